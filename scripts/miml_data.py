"""Rule miml_data: bags of bases of the train and val solo videos, with weak labels."""

import json
from pathlib import Path

from avsep.bases import NMFConfig, bases_params, read_bases
from avsep.dataset import read_manifest
from avsep.logs import script_log
from avsep.miml.bags import build_bags, write_bags
from avsep.transforms import STFTConfig

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    expect = bases_params(STFTConfig(**p.expect["stft"]), NMFConfig(**p.expect["nmf"]))
    manifest = read_manifest(snakemake.input.manifest)
    solo = manifest[manifest["kind"] == "solo"]
    label_names = sorted(solo["labels"].unique())
    if p.labels == "vision":
        # What the vision stage sees in each solo video: the weak labels of the seed's setting.
        records = [json.loads(Path(f).read_text()) for f in snakemake.input.vision]
        labels = {r["item"]: r["present"] for r in records}
        agree = sum(labels[v] == [lab] for v, lab in zip(solo["video_id"], solo["labels"]) if v in labels)
        log.info("vision labels: %d of %d videos match their folder", agree, len(labels))
    else:
        labels = {v: [lab] for v, lab in zip(solo["video_id"], solo["labels"])}
    for split in ("train", "val"):
        files = []
        for path in getattr(snakemake.input, split):
            bases, _ = read_bases(path, expect=expect)
            files.append((Path(path).stem, bases.W, bases.active))
        bags = build_bags(files, labels, label_names)
        write_bags(getattr(snakemake.output, split), bags, {**expect, "labels": p.labels, "split": split})
        log.info("%s: %d bags from %d videos", split, len(bags.bags), len(files))
