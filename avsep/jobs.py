"""What each job asks the scheduler for: threads, memory, run time and GPUs, in one place.

Every rule declares its resources through :func:`resources` from the table :data:`JOBS`,
so the workstation, the SLURM profile and the tests all see the same numbers; the profiles
only say where jobs go (account, partition), never how big they are. Memory and run time
grow with the attempt, so a job that SLURM killed for either is resubmitted bigger
(``retries`` in ``profiles/slurm``).

GPUs. The rules in :data:`TORCH_RULES` run torch. Those named in the config's ``gpu.rules``
ask for ``gpu.per_job`` GPUs each (Snakemake's ``gpu`` resource, which the SLURM executor
turns into ``--gpus``) and run on ``device``; every other job runs on the CPU, so that a
one-GPU workstation given ``--resources gpu=1`` never has two CUDA contexts on the card, and
a SLURM job that runs on CUDA always asked for a GPU.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping


@dataclasses.dataclass(frozen=True)
class Job:
    """A rule's request: ``threads``; ``mem_mb`` (MB) and ``runtime`` (minutes) on the
    first attempt."""

    threads: int
    mem_mb: int
    runtime: int


#: Per rule, in stage order. Threads: what a job uses (torch and BLAS are set to it); the
#: demo generator's two workers keep it schedulable on a two-CPU node.
JOBS: dict[str, Job] = {
    "fetch_video": Job(1, 1000, 60),  # waits on the network; concurrency is the downloads resource
    "fetch_report": Job(1, 1000, 10),
    "demo_dataset": Job(2, 2000, 30),
    "urmp_dataset": Job(1, 2000, 30),
    "manifest": Job(2, 1000, 30),  # two ffmpeg probes at once; nothing else can run yet
    "dataset_overview": Job(1, 2000, 10),
    "extract_audio": Job(1, 1000, 20),
    "extract_frames": Job(1, 2000, 20),
    "build_mixture": Job(1, 1000, 10),
    "train_vision": Job(2, 4000, 60),
    "vision_labels": Job(1, 2000, 10),
    "audio_tags": Job(1, 4000, 30),  # separation.labels: audio+vision; a whole duet in memory, as evaluate_duet
    "vision_crossfit": Job(2, 4000, 120),  # miml.labels: vision: miml.vision_folds vision models
    "video_bases": Job(1, 2000, 30),
    "miml_data": Job(1, 4000, 20),
    "train_miml": Job(2, 4000, 60),
    "select_dictionary": Job(2, 4000, 20),
    "oracle_dictionary": Job(1, 4000, 30),
    "deep_data": Job(2, 4000, 20),  # the vision model on every solo's frames; alone on the demo's 2 cores
    "train_deep": Job(2, 6000, 60),
    "separate_nmf": Job(1, 2000, 20),
    "separate_deep": Job(1, 2000, 10),
    "separate_irm": Job(1, 2000, 10),
    "evaluate_mixture": Job(1, 2000, 20),
    "duet_reference": Job(1, 1000, 10),
    "evaluate_duet": Job(1, 2000, 20),
    "evaluation_summary": Job(1, 1000, 10),
    "evaluate_vision": Job(1, 1000, 10),
    "multisource_table": Job(1, 1000, 10),
    "train_probe": Job(1, 2000, 30),  # small models: one thread is fastest
    "probe_mixture": Job(1, 2000, 20),
    "probe_report": Job(1, 2000, 30),
    "train_localization": Job(2, 4000, 30),
    "localization_maps": Job(1, 2000, 10),
    "evaluate_localization": Job(1, 4000, 20),
    "showcase": Job(1, 2000, 10),
    "runtimes": Job(1, 1000, 5),
}

#: The rules whose jobs run torch, and so may run on a GPU (``gpu.rules`` names some).
TORCH_RULES = ("train_vision", "vision_labels", "audio_tags", "vision_crossfit", "video_bases", "train_miml", "select_dictionary",
               "separate_nmf", "deep_data", "train_deep", "separate_deep", "evaluate_mixture", "evaluate_duet",
               "train_probe", "probe_mixture", "probe_report", "train_localization", "localization_maps")


def gpus(config: Mapping, rule: str) -> int:
    """The GPUs a job of ``rule`` asks for: ``gpu.per_job`` for the rules in ``gpu.rules``,
    else 0."""
    return int(config["gpu"]["per_job"]) if rule in config["gpu"]["rules"] else 0


def device(config: Mapping, rule: str) -> str:
    """The ``device`` setting a job of ``rule`` runs with: the config's for a job that asks
    for a GPU, ``cpu`` for every other (a job never uses a GPU it did not ask for)."""
    return config["device"] if gpus(config, rule) else "cpu"


def _by_attempt(first: int) -> Callable:
    return lambda wildcards, attempt: first * attempt


def resources(config: Mapping, rule: str) -> dict:
    """The ``resources:`` of ``rule``: memory and run time growing with the attempt, and its
    GPUs."""
    job = JOBS[rule]
    return {"mem_mb": _by_attempt(job.mem_mb), "runtime": _by_attempt(job.runtime), "gpu": gpus(config, rule)}


def threads(rule: str) -> int:
    return JOBS[rule].threads


def gpu_problems(config: Mapping) -> list[str]:
    """``device`` and ``gpu`` keys that contradict each other."""
    problems = []
    per_job, rules, setting = config["gpu"]["per_job"], config["gpu"]["rules"], config["device"]
    unknown = sorted(set(rules) - set(TORCH_RULES))
    if unknown:
        problems.append(f"gpu.rules: {', '.join(unknown)} run no torch; the rules that can use a GPU "
                        f"are {', '.join(TORCH_RULES)}")
    if setting.startswith("cuda") and per_job == 0:
        problems.append(f"device: {setting} with gpu.per_job: 0 would run jobs on a GPU they never "
                        "asked for; set gpu.per_job: 1 (and give snakemake --resources gpu=<GPUs>)")
    if setting == "cpu" and per_job > 0:
        problems.append(f"device: cpu with gpu.per_job: {per_job} would hold GPUs that no job uses; "
                        "set device: auto or cuda, or gpu.per_job: 0")
    if per_job > 0 and not rules:
        problems.append("gpu.per_job > 0 but gpu.rules is empty: no job would ask for a GPU")
    return problems
