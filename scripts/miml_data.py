"""Rule miml_data: bags of bases of the training and validation videos that MIML learns from
(solo and multi-source, miml.train_on), with their weak labels (miml.labels)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import json
from pathlib import Path

from avsep.bases import NMFConfig, bases_params, read_bases
from avsep.dataset import read_manifest
from avsep.files import write_table
from avsep.inputs import CROSSFIT_LABELS
from avsep.logs import script_log
from avsep.miml.bags import build_bags, write_bags
from avsep.miml.labels import agreement_table, weak_labels
from avsep.transforms import STFTConfig

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    expect = bases_params(STFTConfig(**p.expect["stft"]), NMFConfig(**p.expect["nmf"]))
    manifest = read_manifest(snakemake.input.manifest)
    # Every instrument of the dataset is a label, also one whose solos are excluded.
    label_names = sorted({lab for labels in manifest["labels"] for lab in labels.split(",")})
    videos = {split: [Path(f).stem for f in getattr(snakemake.input, split)] for split in ("train", "val")}
    records = {}
    for f in snakemake.input.vision:
        data = json.loads(Path(f).read_text())
        if f.endswith(CROSSFIT_LABELS):
            records.update({v: {**r, "source": "crossfit"} for v, r in data["videos"].items()})
        else:
            records[data["item"]] = {"present": data["present"], "source": "vision"}
    labels, table = weak_labels(manifest, videos["train"] + videos["val"], p.labels, records)
    write_table(snakemake.output.labels, table)
    for row in agreement_table(table).itertuples():
        log.info("weak labels (%s) of %s %s videos: %d of %d match their folders", row.source, row.split, row.kind,
                 row.agree, row.videos)
    if not videos["train"]:
        raise ValueError(f"MIML has no training video: miml.train_on: {p.train_on} with no training "
                         f"{'multi-source' if p.train_on == 'multi' else ''} videos in the split")
    missing = sorted(set(label_names) - {lab for v in videos["train"] for lab in labels[v]})
    if missing:
        log.warning("no training bag is labelled %s: MIML cannot learn %s", ", ".join(missing),
                    "them" if len(missing) > 1 else "it")
    for split in ("train", "val"):
        files = []
        for path in getattr(snakemake.input, split):
            bases, _ = read_bases(path, expect=expect)
            files.append((Path(path).stem, bases.W, bases.active))
        bags = build_bags(files, labels, label_names)
        write_bags(getattr(snakemake.output, split), bags,
                   {**expect, "labels": p.labels, "split": split, "train_on": p.train_on,
                    "solo_excluded": ",".join(p.solo_excluded)})
        multi = int(sum(len(labels[v]) > 1 for v, *_ in files))
        log.info("%s: %d bags from %d videos (%d multi-source)", split, len(bags.bags), len(files), multi)
