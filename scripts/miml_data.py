"""Rule miml_data: bags of bases of the train and val solo videos, with weak labels."""

from pathlib import Path

from avsep.bases import NMFConfig, bases_params, read_bases
from avsep.dataset import read_manifest
from avsep.logs import script_log
from avsep.miml import build_bags, write_bags
from avsep.transforms import STFTConfig

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    expect = bases_params(STFTConfig(**p.expect["stft"]), NMFConfig(**p.expect["nmf"]))
    manifest = read_manifest(snakemake.input.manifest)
    solo = manifest[manifest["kind"] == "solo"]
    # Folder labels; the vision stage's pooled labels plug in here (miml.labels: visual).
    labels = {v: [lab] for v, lab in zip(solo["video_id"], solo["labels"])}
    label_names = sorted(solo["labels"].unique())
    for split in ("train", "val"):
        files = []
        for path in getattr(snakemake.input, split):
            bases, _ = read_bases(path, expect=expect)
            files.append((Path(path).stem, bases.W, bases.active))
        bags = build_bags(files, labels, label_names)
        write_bags(getattr(snakemake.output, split), bags, {**expect, "labels": p.labels, "split": split})
        log.info("%s: %d bags from %d videos", split, len(bags.bags), len(files))
