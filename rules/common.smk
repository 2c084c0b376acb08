# Helpers shared by the stages: config validation, the dataset location and the input
# functions that read the manifest and mixture plan checkpoints.

import functools
from pathlib import Path

from snakemake.utils import validate

from avsep.dataset import read_manifest
from avsep.mixtures import read_plan

validate(config, schema="../config/schema.yaml")

DEMO_ROOT = "results/demo/dataset"
USING_DEMO = not config["dataset"]["root"]
DATASET_ROOT = DEMO_ROOT if USING_DEMO else config["dataset"]["root"]


def manifest_inputs(wildcards):
    """The demo folder, or every video file of the user's dataset, so that adding,
    removing or touching a video reruns the manifest."""
    if USING_DEMO:
        return [DEMO_ROOT]
    exts = {e.lower() for e in config["dataset"]["extensions"]}
    root = Path(DATASET_ROOT)
    return sorted(
        str(p)
        for sub in ("solo", "duet")
        for p in root.glob(f"{sub}/*/*")
        if p.is_file()
        and not p.name.startswith(".")
        and p.suffix.lower().lstrip(".") in exts
    )


@functools.lru_cache(maxsize=4)
def _read_manifest(path, mtime):
    return read_manifest(path)


def manifest():
    """The manifest table; raises Snakemake's checkpoint exception until it exists."""
    path = checkpoints.manifest.get().output[0]
    return _read_manifest(path, Path(path).stat().st_mtime_ns)


def video_path(wildcards):
    table = manifest()
    row = table[table["video_id"] == wildcards.video_id]
    if row.empty:
        raise ValueError(f"video id {wildcards.video_id!r} is not in the manifest")
    return row["path"].iloc[0]


def extracted_files(wildcards):
    """Audio and frames of every video in the manifest."""
    ids = manifest()["video_id"]
    return [f"results/audio/{v}.wav" for v in ids] + [
        f"results/frames/{v}.h5" for v in ids
    ]


@functools.lru_cache(maxsize=4)
def _read_plan(path, mtime):
    return read_plan(path)


def mixture_plan():
    path = checkpoints.plan_mixtures.get().output[0]
    return _read_plan(path, Path(path).stat().st_mtime_ns)


def mixture_row(wildcards):
    plan = mixture_plan()
    row = plan[plan["mix_id"] == wildcards.mix_id]
    if row.empty:
        raise ValueError(f"mixture {wildcards.mix_id!r} is not in the mixture plan")
    return row.iloc[0].to_dict()


def mixture_sources(wildcards):
    row = mixture_row(wildcards)
    return {
        f"{side}_{kind}": f"results/{folder}/{row[side + '_video']}.{ext}"
        for side in ("left", "right")
        for kind, folder, ext in (("audio", "audio", "wav"), ("frames", "frames", "h5"))
    }


def all_mixtures(wildcards):
    return [f"results/mixtures/{m}" for m in mixture_plan()["mix_id"]]


def all_frames(wildcards):
    return [f"results/frames/{v}.h5" for v in manifest()["video_id"]]
