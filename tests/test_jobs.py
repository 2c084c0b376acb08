"""What jobs ask the scheduler for (avsep.jobs): GPUs only where a job runs on CUDA, and the
same threads, memory and time under every executor."""

import re

import pytest
import yaml

from avsep import jobs
from conftest import TINY_CONFIG, run_snakemake

BASE = {"device": "auto", "gpu": {"per_job": 0, "rules": ["train_vision", "train_miml"]}}


def test_a_job_uses_a_gpu_only_when_it_asks_for_one():
    gpu = {**BASE, "gpu": {**BASE["gpu"], "per_job": 1}}
    assert jobs.gpus(gpu, "train_vision") == 1 and jobs.device(gpu, "train_vision") == "auto"
    # A rule left out of gpu.rules, and every rule with per_job 0, runs on the CPU.
    assert jobs.gpus(gpu, "separate_nmf") == 0 and jobs.device(gpu, "separate_nmf") == "cpu"
    assert jobs.gpus(BASE, "train_vision") == 0 and jobs.device(BASE, "train_vision") == "cpu"


def test_memory_and_time_grow_with_the_attempt():
    res = jobs.resources(BASE, "train_miml")
    assert res["gpu"] == 0
    assert [res["mem_mb"](None, a) for a in (1, 2, 3)] == [4000, 8000, 12000]
    assert res["runtime"](None, 2) == 2 * jobs.JOBS["train_miml"].runtime


@pytest.mark.parametrize("changes, match", [
    ({"device": "cuda"}, "device: cuda with gpu.per_job: 0"),
    ({"device": "cpu", "gpu": {"per_job": 1, "rules": ["train_miml"]}}, "device: cpu with gpu.per_job: 1"),
    ({"gpu": {"per_job": 1, "rules": ["build_mixture"]}}, "gpu.rules: build_mixture run no torch"),
    ({"gpu": {"per_job": 1, "rules": []}}, "gpu.rules is empty"),
])
def test_contradicting_gpu_settings_are_refused(changes, match):
    problems = jobs.gpu_problems({**BASE, **changes})
    assert len(problems) == 1 and match in problems[0]


def test_settings_that_fit_have_no_problems():
    assert jobs.gpu_problems(BASE) == []
    assert jobs.gpu_problems({"device": "cuda", "gpu": {"per_job": 1, "rules": list(jobs.TORCH_RULES)}}) == []


def _requests(workdir, config_file=None) -> dict[str, set[int]]:
    """{rule: the gpu values its jobs ask for}, from a dry run that plans every job again."""
    forced = [r for r in jobs.JOBS if r not in ("demo_dataset", "manifest")]
    configs = (TINY_CONFIG, config_file) if config_file else (TINY_CONFIG,)
    proc = run_snakemake(workdir, "-n", "--nolock", "--forcerun", *forced, configs=configs)
    found: dict[str, set[int]] = {}
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \S+:\n)", proc.stdout + proc.stderr):
        head = re.match(r"(?:local)?(?:rule|checkpoint) (\S+):\n", block)
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        if head and res:
            gpu = re.search(r"\bgpu=(\d+)", res.group(1))
            found.setdefault(head.group(1), set()).add(int(gpu.group(1)) if gpu else 0)
    return found


def test_dry_run_asks_for_gpus_per_rule_as_configured(tiny_run, tmp_path):
    cpu = _requests(tiny_run)
    # Every job of the workflow is in the one resource table, and on the CPU config none
    # asks for a GPU.
    assert set(cpu) - {"all"} <= set(jobs.JOBS)
    assert {"train_vision", "vision_labels", "separate_nmf", "evaluate_mixture", "train_probe"} <= set(cpu)
    assert all(values == {0} for values in cpu.values()), cpu

    gpu_config = tmp_path / "gpu.yaml"
    rules = ["train_vision", "vision_labels", "train_miml", "separate_nmf"]
    gpu_config.write_text(yaml.safe_dump({"device": "cuda", "gpu": {"per_job": 1, "rules": rules}}))
    gpu = _requests(tiny_run, gpu_config)
    assert set(gpu) == set(cpu)
    for rule, values in gpu.items():
        assert values == ({1} if rule in rules else {0}), (rule, values)


def test_the_slurm_profile_stops_before_submitting_without_its_account(tmp_path):
    from conftest import REPO

    env = {"AVSEP_SLURM_PARTITION": "debug", "AVSEP_SLURM_ACCOUNT": ""}
    proc = run_snakemake(tmp_path, "-n", "--profile", str(REPO / "profiles" / "slurm"), check=False, env=env)
    assert proc.returncode != 0
    assert "slurm_account from $AVSEP_SLURM_ACCOUNT, which is not set" in proc.stdout + proc.stderr
