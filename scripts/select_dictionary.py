"""Rule select_dictionary: the MIML network's key bases per instrument, capped."""

import numpy as np
import pandas as pd
import torch

from avsep.devices import pick_device
from avsep.dictionary import reduce_bases, select_key_bases, write_dictionaries
from avsep.files import atomic_path, write_table
from avsep.logs import script_log
from avsep.miml.bags import read_bags
from avsep.miml.model import load_model
from avsep.miml.predict import relation_maps
from avsep.report.plots import plot_relation_maps

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    device = pick_device(p.device)
    model, meta = load_model(snakemake.input.model, device)
    train = read_bags(snakemake.input.train)
    _, relation = relation_maps(model, train.bags, device)
    pools, kept = select_key_bases(relation, train.targets, train.bags, train.video_id, train.chunk,
                                   train.label_names, margin=p.margin)
    missing = [name for name in train.label_names if name not in pools]
    if missing:
        raise ValueError(f"MIML selected no basis for {missing}; lower miml.select_margin or train longer")
    video_label = dict(zip(train.video_id, (train.label_names[i] for i in train.targets.argmax(axis=1))))
    dictionaries, rows = {}, []
    for name, pool in pools.items():
        d = reduce_bases(pool, p.dictionary["max_bases"], method=p.dictionary["reduce"], seed=p.dictionary["seed"])
        dictionaries[name] = d
        rows.append({"instrument": name, "selected": pool.W.shape[1], "kept": d.W.shape[1],
                     "kept_from_own_videos": int(sum(video_label[v] == name for v in d.video_id)),
                     "mean_confidence": float(pool.score.mean())})
        log.info("%s: %d key bases selected, %d kept", name, pool.W.shape[1], d.W.shape[1])
    write_dictionaries(snakemake.output.dictionary, dictionaries,
                       {**{f"dictionary_{k}": v for k, v in p.dictionary.items()}, "kind": "miml",
                        "select_margin": p.margin})
    write_table(snakemake.output.selection, pd.DataFrame(rows))
    # A few bags, one per instrument, to look at.
    first = [int(np.flatnonzero(train.targets[:, l])[0]) for l in range(len(train.label_names))
             if train.targets[:, l].any()]
    with atomic_path(snakemake.output.maps) as tmp:
        plot_relation_maps(relation[first], train.targets[first], kept[first], train.label_names,
                           [f"{train.video_id[i]} chunk {train.chunk[i]}" for i in first], tmp)
