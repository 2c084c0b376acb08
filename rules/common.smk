# Helpers shared by the stages: config validation, the dataset location and the input
# functions that read the manifest and mixture plan checkpoints.

import functools
import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import yaml

from avsep.config import ConfigError, consistency_problems, region_head_possible, schema_problems
from avsep.dataset import SPLITS_FILE, read_manifest, stems_folder
from avsep.files import FORMAT_VERSION
from avsep.media import FRAME_SAMPLING
from avsep.mixtures import read_plan
from avsep.transforms import STFTConfig


def _check_config():
    """Every config problem at once, worded as key, value and what is allowed, before any
    job starts; then the schema's defaults are filled in."""
    schema_file = Path(workflow.basedir) / "config" / "schema.yaml"
    schema = yaml.safe_load(schema_file.read_text())
    problems = schema_problems(config, schema)
    if not problems:
        validate(config, schema=str(schema_file))
        problems = consistency_problems(config)
    if problems:
        raise WorkflowError(str(ConfigError(problems)))


_check_config()

# The STFT settings; audio.max_seconds is a limit on inputs, not an STFT parameter.
STFT_PARAMS = {k: v for k, v in sorted(config["audio"].items()) if k != "max_seconds"}
STFT = STFTConfig(**STFT_PARAMS)
NMF_PARAMS = dict(sorted(config["nmf"].items()))
SEPARATED_METHODS = [m for m in config["evaluation"]["methods"] if m != "mixture"]


def _check_cluster_settings():
    """A profile's account or partition left as an unset environment variable (see
    profiles/slurm/profile.yaml) would reach sbatch as a literal '$NAME'."""
    resources = workflow.resource_settings.default_resources
    text = " ".join(map(str, getattr(resources, "args", None) or [])) or str(resources)
    for name in ("AVSEP_SLURM_ACCOUNT", "AVSEP_SLURM_PARTITION"):
        if f"${name}" in text and not os.environ.get(name):
            raise WorkflowError(
                f"the profile takes slurm_{name.split('_')[-1].lower()} from ${name}, which is "
                f"not set: export {name}=... (or write the value into the profile)"
            )


_check_cluster_settings()

VISION_MODEL = (
    "results/vision/model/classifier.pt"
    if config["vision"]["method"] == "halves"
    else "results/vision/model/detector.pt"
)
# What the vision model depends on; max_frames, present_threshold and abstain_margin only
# affect inference.
VISION_TRAIN_PARAMS = {
    k: v
    for k, v in sorted(config["vision"].items())
    if k not in ("max_frames", "present_threshold", "abstain_margin")
}

DEMO_ROOT = "results/demo/dataset"
USING_DEMO = not config["dataset"]["root"]
DATASET_ROOT = DEMO_ROOT if USING_DEMO else config["dataset"]["root"]


# The manifest as an input of the rules after it. It is re-made whenever a key it depends on
# changes (a dataset.*, split.*, mixtures.* or audio.max_seconds key), often with the same
# content: its time stamp is ignored (ancient), and what each job takes from it is in its
# params (solo_facts, ...), so only a real change reruns them. The mixture
# plan is made in the same job, and read the same way by the jobs after it.
MANIFEST = ancient("results/manifest.tsv")


def solo_facts(*splits):
    """What a job takes from the manifest, given as params: each solo video of ``splits``
    with its label and split, sorted by video id."""
    table = manifest()
    table = table[(table["kind"] == "solo") & table["split"].isin(splits)]
    rows = table.sort_values("video_id")
    return {
        v: [lab, s]
        for v, lab, s in zip(rows["video_id"], rows["labels"], rows["split"])
    }


def manifest_inputs(wildcards):
    """The demo folder, or every video file of the user's dataset and its splits.tsv, so
    that adding, removing or touching a video or the split file reruns the manifest."""
    if USING_DEMO:
        return [DEMO_ROOT]
    exts = {e.lower() for e in config["dataset"]["extensions"]}
    root = Path(DATASET_ROOT)
    splits = [str(root / SPLITS_FILE)] if (root / SPLITS_FILE).is_file() else []
    return splits + sorted(
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
    path = checkpoints.manifest.get().output.plan
    return _read_plan(path, Path(path).stat().st_mtime_ns)


def plan_row(mix_id):
    plan = mixture_plan()
    row = plan[plan["mix_id"] == mix_id]
    if row.empty:
        raise ValueError(f"mixture {mix_id!r} is not in the mixture plan")
    return row.iloc[0].to_dict()


def mixture_row(wildcards):
    return plan_row(wildcards.mix_id)


def mixture_sources(wildcards):
    row = mixture_row(wildcards)
    return {
        "left_audio": f"results/audio/{row['left_video']}.wav",
        "right_audio": f"results/audio/{row['right_video']}.wav",
        "left_frames": f"results/frames/{row['left_video']}.h5",
        "right_frames": f"results/frames/{row['right_video']}.h5",
    }


def all_mixtures(wildcards):
    return [f"results/mixtures/{m}" for m in mixture_plan()["mix_id"]]


def all_frames(wildcards):
    return [f"results/frames/{v}.h5" for v in manifest()["video_id"]]


def solo_videos(split=None):
    table = manifest()
    table = table[table["kind"] == "solo"]
    if split is not None:
        table = table[table["split"] == split]
    return list(table["video_id"])


def all_bases(wildcards):
    """The bases the later stages read: the train and val solo videos' (test videos are
    only ever mixed)."""
    return [
        f"results/bases/{v}.h5" for v in [*solo_videos("train"), *solo_videos("val")]
    ]


def train_bases(wildcards):
    return [f"results/bases/{v}.h5" for v in solo_videos("train")]


def duet_videos():
    table = manifest()
    return list(table.loc[table["kind"] == "duet", "video_id"])


def is_mixture(item):
    return re.fullmatch(r"mix[0-9]+", item) is not None


def separation_input(wildcards):
    """The audio a separation job reads: a test mixture's folder or a duet's audio."""
    if is_mixture(wildcards.item):
        return f"results/mixtures/{wildcards.item}"
    return f"results/audio/{wildcards.item}.wav"


def separation_inputs(wildcards):
    """The audio to separate, and with separation.labels: vision or folder+vision the
    vision stage's labels."""
    # params read the checkpoint (visible_instruments, from the manifest or the plan it
    # writes), so its first output is an input: without it a job cannot be built on its
    # own, as a cluster job is (--target-jobs). The job's row is in params.
    inputs = {"audio": separation_input(wildcards), "manifest": MANIFEST}
    if separation_settings(wildcards)["labels"] in ("vision", "folder+vision"):
        inputs["vision"] = f"results/vision/{wildcards.item}.json"
    return inputs


def separation_settings(wildcards):
    """The separation keys of a job; the "_truth" methods use the true labels."""
    settings = dict(sorted(config["separation"].items()))
    if wildcards.get("via") == "_truth":
        settings["labels"] = "truth"
    return settings


def visible_instruments(wildcards):
    """The instruments to separate and their positions, left to right. This is the seam
    where the vision stage's labels take over from the ground truth (separation.labels).
    """
    if is_mixture(wildcards.item):
        row = plan_row(wildcards.item)
        return {
            "instruments": [row["left_instrument"], row["right_instrument"]],
            "positions": ["left", "right"],
        }
    table = manifest()
    row = table[table["video_id"] == wildcards.item]
    if row.empty:
        raise ValueError(
            f"{wildcards.item!r} is neither a mixture nor a video of the manifest"
        )
    labels = row["labels"].iloc[0].split(",")
    return {"instruments": labels, "positions": ["unknown"] * len(labels)}


def folder_labels(wildcards):
    """The instruments a video's folder names (a duet folder names two); none for a test
    mixture, whose protocol gives no labels (separation.labels: folder+vision)."""
    if is_mixture(wildcards.item):
        return []
    return visible_instruments(wildcards)["instruments"]


def separated_for_evaluation(wildcards):
    return [f"results/separated/{m}/{wildcards.mix_id}" for m in SEPARATED_METHODS]


# The audio probes, one per feature and kind; the log-mel linear probe gives audio_acc.
# The MIML-embedding probes only when a MIML method is evaluated: otherwise evaluation does
# not need the MIML network at all.
PROBE_FEATURES = [f for f in config["probe"]["features"]
                  if f != "miml" or any(m.startswith("miml_nmf") for m in SEPARATED_METHODS)]
PROBE_FILES = [f"results/probe/{f}_{k}.pt" for f in PROBE_FEATURES for k in config["probe"]["kinds"]]
PROBE_MODEL = "results/probe/logmel_linear.pt"


def probe_training_inputs(wildcards):
    inputs = {"manifest": MANIFEST, "audio": [f"results/audio/{v}.wav" for s in ("train", "val")
                                             for v in solo_videos(s)]}
    if wildcards.feature == "miml":
        inputs["miml"] = "results/miml/model.pt"
    return inputs


def probe_report_inputs(wildcards):
    mixtures = list(mixture_plan()["mix_id"])
    inputs = {"manifest": MANIFEST, "probes": PROBE_FILES,
              "solo": [f"results/audio/{v}.wav" for v in solo_videos("test")],
              "mixtures": [f"results/mixtures/{m}" for m in mixtures],
              "separated": [f"results/separated/{m}/{mix}" for mix in mixtures for m in SEPARATED_METHODS]}
    if "miml" in PROBE_FEATURES:
        inputs["miml"] = "results/miml/model.pt"
    return inputs


# Duets are separated by the methods that need neither true stems nor true labels.
DUET_METHODS = [m for m in SEPARATED_METHODS if m != "irm" and not m.endswith("_truth")]


def duets_with_stems():
    """The duets whose true stems the dataset carries (<root>/stems/<video_id>/, checked in
    the manifest stage): they are scored like the test mixtures."""
    return [v for v in duet_videos() if stems_folder(DATASET_ROOT, v).is_dir()]


def duet_reference_inputs(wildcards):
    inputs = {"manifest": MANIFEST, "audio": f"results/audio/{wildcards.video_id}.wav",
              "stems": [str(stems_folder(DATASET_ROOT, wildcards.video_id) / f"{i}.wav")
                        for i in duet_instruments(wildcards)]}
    annotations = f"{DATASET_ROOT}/annotations/{wildcards.video_id}.tsv"
    if USING_DEMO or Path(annotations).is_file():
        inputs["annotations"] = annotations
    return inputs


def duet_instruments(wildcards):
    table = manifest()
    return table.loc[table["video_id"] == wildcards.video_id, "labels"].iloc[0].split(",")


def evaluation_models(wildcards):
    """The audio classifiers that name the evaluated tracks: the independent probe, and the
    MIML network when miml_nmf is evaluated (it is that method's own)."""
    models = {"probe": PROBE_MODEL}
    if any(m.startswith("miml_nmf") for m in SEPARATED_METHODS):
        models["miml"] = "results/miml/model.pt"
    return models


def duet_separations_for_evaluation(wildcards):
    return [f"results/separated/{m}/{wildcards.video_id}" for m in DUET_METHODS]


def all_duet_evaluations(wildcards):
    return [f"results/eval/duets/{v}.tsv" for v in duets_with_stems()]


def all_evaluations(wildcards):
    return [f"results/eval/mixtures/{m}.tsv" for m in mixture_plan()["mix_id"]]


def all_duet_separations(wildcards):
    # irm needs stems; the _truth methods compare with vision on scored mixtures.
    return [f"results/separated/{m}/{v}" for m in DUET_METHODS for v in duet_videos()]


def all_mixture_separations(wildcards):
    return [
        f"results/separated/{m}/{mix}"
        for m in SEPARATED_METHODS
        for mix in mixture_plan()["mix_id"]
    ]


def val_bases(wildcards):
    return [f"results/bases/{v}.h5" for v in solo_videos("val")]


def vision_training_frames(wildcards):
    table = manifest()
    solo = table[(table["kind"] == "solo") & table["split"].isin(["train", "val"])]
    return [f"results/frames/{v}.h5" for v in solo["video_id"]]


def _vision_box_files():
    """<dataset>/annotations/<video_id>.tsv of each train and val solo video."""
    table = manifest()
    solo = table[(table["kind"] == "solo") & table["split"].isin(["train", "val"])]
    return [f"{DATASET_ROOT}/annotations/{v}.tsv" for v in solo["video_id"]]


def vision_regions(wildcards=None):
    """Whether train_vision trains the region classifier (vision.regions; avsep/regions.py):
    always with boxes, never with frame, and with auto when the settings allow it and every
    train and val solo video has its box annotations."""
    v = config["vision"]
    if v["regions"] == "frame":
        return False
    if v["regions"] == "boxes":
        return v["method"] == "halves"
    return region_head_possible(v) and all(Path(f).is_file() for f in _vision_box_files())


def vision_annotations(wildcards):
    """The box annotations that vision trains on: the detector's (method detector, no
    vision.weights) and the region classifier's (vision_regions)."""
    detector = config["vision"]["method"] == "detector" and not config["vision"]["weights"]
    if not detector and not vision_regions():
        return []
    files = _vision_box_files()
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        what = "vision.method: detector" if detector else "vision.regions: boxes"
        instead = ("give vision.weights, or use vision.method: halves" if detector
                   else "use vision.regions: frame or auto")
        raise ValueError(
            f"{what} trains on box annotations, and {len(missing)} of {len(files)} are "
            f"missing, e.g. {missing[0]}; {instead} (see config/README.md)"
        )
    return files


def miml_vision_labels(wildcards):
    """With miml.labels: vision, the vision records of the train and val solo videos."""
    if config["miml"]["labels"] != "vision":
        return []
    return [
        f"results/vision/{v}.json" for v in [*solo_videos("train"), *solo_videos("val")]
    ]


def vision_item_frames(wildcards):
    """A mixture's folder (its frames.h5 inside) or a duet video's frames."""
    if is_mixture(wildcards.item):
        return f"results/mixtures/{wildcards.item}"
    return f"results/frames/{wildcards.item}.h5"


def duet_annotations(wildcards):
    """The box annotations of the duets that have them (<dataset>/annotations/<id>.tsv):
    the true side of each player, for scoring vision on duets."""
    files = [f"{DATASET_ROOT}/annotations/{v}.tsv" for v in duet_videos()]
    return [f for f in files if USING_DEMO or Path(f).is_file()]


def all_vision_labels(wildcards):
    items = [*mixture_plan()["mix_id"], *duet_videos()]
    return [f"results/vision/{i}.json" for i in items]


def showcase_mixtures():
    return list(mixture_plan()["mix_id"])[: config["report"]["showcase"]]


def showcase_inputs(wildcards):
    return {
        "mixture": f"results/mixtures/{wildcards.mix_id}",
        "separated": [
            f"results/separated/{m}/{wildcards.mix_id}" for m in SEPARATED_METHODS
        ],
        "scores": f"results/eval/mixtures/{wildcards.mix_id}.tsv",
        "vision": f"results/vision/{wildcards.mix_id}.json",
    }


def showcase_pages(wildcards):
    return [f"results/report/showcase/{m}.html" for m in showcase_mixtures()]
