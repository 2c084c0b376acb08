"""Rule select_dictionary: the MIML network's key bases per instrument, capped, and the purity
of each instrument's selection."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from avsep.bases import NMFConfig, bases_params, read_bases
from avsep.dataset import read_manifest
from avsep.devices import pick_device
from avsep.dictionary import reduce_bases, select_key_bases, write_dictionaries
from avsep.files import atomic_path, write_table
from avsep.logs import script_log
from avsep.miml.bags import read_bags
from avsep.miml.model import load_model
from avsep.miml.predict import relation_maps
from avsep.miml.purity import BasisSources, dictionary_purity, learned_from, read_stems, stem_shares
from avsep.report.plots import plot_purity, plot_relation_maps
from avsep.transforms import STFTConfig

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    device = pick_device(p.device)
    model, meta = load_model(snakemake.input.model, device)
    train = read_bags(snakemake.input.train)
    _, relation = relation_maps(model, train.bags, device)
    pools, kept = select_key_bases(relation, train.targets, train.bags, train.video_id, train.chunk,
                                   train.label_names, margin=p.margin, threshold=p.threshold)
    missing = [name for name in train.label_names if name not in pools]
    if missing:
        raise ValueError(f"MIML selected no basis for {missing}; lower miml.select_margin or train longer")
    dictionaries, rows = {}, []
    for name, pool in pools.items():
        d = reduce_bases(pool, p.dictionary["max_bases"], method=p.dictionary["reduce"], seed=p.dictionary["seed"])
        dictionaries[name] = d
        rows.append({"instrument": name, "selected": pool.W.shape[1], "kept": d.W.shape[1],
                     "mean_confidence": float(pool.score.mean())})
        log.info("%s: %d key bases selected, %d kept", name, pool.W.shape[1], d.W.shape[1])
    # The STFT and NMF settings of the bases, as the oracle dictionary records them: another
    # run that takes this dictionary (transfer.run) checks them.
    write_dictionaries(snakemake.output.dictionary, dictionaries,
                       {**bases_params(STFTConfig(**p.stft), NMFConfig(**p.nmf)),
                        **{f"dictionary_{k}": v for k, v in p.dictionary.items()}, "kind": "miml",
                        "select_margin": p.margin})

    # Purity: where the selected bases truly come from (the folders of solos, the stems of duets).
    manifest = read_manifest(snakemake.input.manifest)
    kinds = dict(zip(manifest["video_id"], manifest["kind"]))
    folder = dict(zip(manifest["video_id"], manifest["labels"]))
    stft_cfg, nmf_cfg = STFTConfig(**p.stft), NMFConfig(**p.nmf)
    shares = {}
    for path in snakemake.input.duet_bases:
        video_id = Path(path).stem
        bases, _ = read_bases(path)
        stems = read_stems(p.stems[video_id], stft_cfg.sample_rate)
        shares[video_id] = stem_shares(bases.W, bases.H, stems, stft_cfg, nmf_cfg)
    videos = set(train.video_id)
    sources = BasisSources({v: folder[v] for v in videos if kinds[v] == "solo"}, shares,
                           {v for v in videos if kinds[v] != "solo"})
    purity = dictionary_purity(pools, sources, learned_from(train, kinds))
    selection = pd.DataFrame(rows).merge(purity[["instrument", "learned_from", "from_multi", "purity"]],
                                         on="instrument", how="left")
    write_table(snakemake.output.selection, selection)
    write_table(snakemake.output.purity, purity)
    for row in purity.itertuples():
        log.info("%s (bags from %s): purity %.3f (%d of %d bases of known source; %d from multi-source videos)",
                 row.instrument, row.learned_from, row.purity, row.pure, row.known, row.from_multi)
    with atomic_path(snakemake.output.purity_plot) as tmp:
        plot_purity(purity, tmp)
    # A few bags to look at: one per instrument, then two multi-source ones.
    first = [int(np.flatnonzero(train.targets[:, l])[0]) for l in range(len(train.label_names))
             if train.targets[:, l].any()]
    first += [int(i) for i in np.flatnonzero(train.targets.sum(axis=1) > 1) if i not in first][:2]
    with atomic_path(snakemake.output.maps) as tmp:
        plot_relation_maps(relation[first], train.targets[first], kept[first], train.label_names,
                           [f"{train.video_id[i]} chunk {train.chunk[i]}" for i in first], tmp)
