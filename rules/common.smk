# Shared by the stages: the config checks, the settings the stages read, the readers of the
# manifest checkpoint, and one-line input functions in stage order. Which files a job needs
# is decided in avsep/inputs.py (tested in tests/test_inputs.py); what a job asks the
# scheduler for is in avsep/jobs.py.

import dataclasses
import functools
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

import yaml

from avsep import inputs as layout
from avsep import jobs
from avsep.config import (
    ConfigError,
    consistency_problems,
    localization_separator,
    region_head_possible,
    schema_problems,
)
from avsep.dataset import read_manifest
from avsep.fetch import FetchError, plan_fetch
from avsep.transfer import TRANSFER_RULES, run_instruments
from avsep.files import FORMAT_VERSION
from avsep.media import FRAME_SAMPLING
from avsep.mixtures import read_plan


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


def _check_cluster_settings():
    """A profile's account or partition left as an unset environment variable (see
    profiles/slurm/profile.yaml) would reach sbatch as a literal '$NAME'."""
    defaults = workflow.resource_settings.default_resources
    given = " ".join(defaults.args) if defaults is not None else ""
    unset = [
        name
        for name in ("AVSEP_SLURM_ACCOUNT", "AVSEP_SLURM_PARTITION")
        if f"${name}" in given and not os.environ.get(name)
    ]
    if unset:
        raise WorkflowError(
            f"the profile takes slurm_{unset[0].split('_')[-1].lower()} from ${unset[0]}, which is "
            f"not set: export {unset[0]}=... (or write the value into the profile)"
        )


_check_config()
_check_cluster_settings()

# The settings the stages read.
STFT_PARAMS = layout.stft_params(config)
NMF_PARAMS = dict(sorted(config["nmf"].items()))
SEPARATED_METHODS = layout.separated_methods(config)
DUET_METHODS = layout.duet_methods(config)
PROBE_FEATURES = layout.probe_features(config)
PROBE_MODEL = layout.PROBE_MODEL
VISION_MODEL = layout.vision_model(config)
VISION_TRAIN_PARAMS = layout.vision_train_params(config)
# The deep keys that make its training clips (the rest only change training).
DEEP_DATA_PARAMS = {
    k: config["deep"][k] for k in ("audio", "visual", "frames_per_video", "image_size")
}
DEMO_ROOT = layout.DEMO_ROOT
DATASET_ROOT = layout.dataset_root(config)


def _fetch_plan():
    """The opt-in fetch stage's videos (avsep/fetch.py), or None without dataset.fetch.lists."""
    f = config["dataset"]["fetch"]
    if not f["lists"]:
        return None
    try:
        return plan_fetch(
            f["lists"],
            categories=f["categories"],
            max_per_category=f["max_per_category"],
            rename=f["rename"],
        )
    except FetchError as err:
        raise WorkflowError(str(err))


FETCH_PLAN = _fetch_plan()
# Another run whose trained models this one uses as they are (rules/transfer.smk).
TRANSFER_RUN = config["transfer"]["run"]
FETCH_OPTIONS = dict(sorted(config["dataset"]["fetch"].items()))


def fetch_plan():
    if FETCH_PLAN is None:
        raise WorkflowError(
            "nothing to fetch: dataset.fetch.lists is empty (README, Real data)"
        )
    return FETCH_PLAN


def fetch_item(video_id):
    return dataclasses.asdict(fetch_plan().by_id()[video_id])


def device(rule):
    """The device setting a job of ``rule`` runs with (cpu unless it asks for a GPU)."""
    return jobs.device(config, rule)


def resources(rule):
    return jobs.resources(config, rule)


# The manifest as an input of the rules after it. It is re-made whenever a key it depends on
# changes (a dataset.*, split.*, mixtures.* or audio.max_seconds key), often with the same
# content: its time stamp is ignored (ancient), and what each job takes from it is in its
# params (solo_facts, ...), so only a real change reruns them. The mixture plan is made in
# the same job, and read the same way by the jobs after it.
MANIFEST = ancient("results/manifest.tsv")


@functools.lru_cache(maxsize=4)
def _read_tables(manifest_path, plan_path, mtimes):
    return read_manifest(manifest_path), read_plan(plan_path)


def stage():
    """The inputs of every job (avsep.inputs.StageInputs); raises Snakemake's checkpoint
    exception until the manifest exists."""
    out = checkpoints.manifest.get().output
    mtimes = tuple(Path(p).stat().st_mtime_ns for p in (out.manifest, out.plan))
    return layout.StageInputs(config, *_read_tables(out.manifest, out.plan, mtimes))


# Input functions, in stage order.
def manifest_inputs(wildcards):
    return layout.manifest_inputs(config)


def video_path(wildcards):
    return stage().video_path(wildcards.video_id)


def solo_facts(*splits):
    return stage().solo_facts(*splits)


def vision_regions(wildcards=None):
    return stage().vision_regions(region_head_possible(config["vision"]))


def vision_annotations(wildcards):
    return stage().vision_annotations(vision_regions())
