"""The workflow on a real SLURM cluster (make test-slurm): a reduced config end to end through
profiles/slurm, every job submitted with sbatch, and the same results as a local run.

The reduced config is the tiny test config (tests/config/tiny.yaml): every rule of the
default workflow and every evaluation method it runs, on a handful of short videos, so that
the comparison costs minutes rather than two full demos.

The cluster is a single node started on this machine by tests/cluster/cluster.sh, which
installs what it needs (Debian, root) and saves the process ids of the daemons it starts;
the fixture stops them by those ids. Not part of `make test`.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "tests" / "cluster" / "cluster.sh"
CONFIGS = [str(REPO / "config" / "config.yaml"), str(REPO / "tests" / "config" / "tiny.yaml")]
# The run times measure each run: they differ by nature (the jobs' times in the report, and
# the deep separator's training minutes with its learning curve against them). Its model and
# per-epoch metrics are compared like every other result.
NOT_COMPARED = ("report/runtimes.tsv", "report/runtimes.png", "deep/timing.tsv", "deep/learning_curve.png")


@pytest.fixture(scope="module")
def cluster():
    started = subprocess.run([str(CLUSTER), "start"], capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(f"the test cluster did not start:\n{started.stderr[-3000:]}")
    account, partition = re.search(r"account=(\S+) partition=(\S+)", started.stdout).groups()
    yield {"AVSEP_SLURM_ACCOUNT": account, "AVSEP_SLURM_PARTITION": partition}
    subprocess.run([str(CLUSTER), "stop"], check=False)


def _snakemake(workdir: Path, *args: str, env=None) -> tuple[subprocess.CompletedProcess, float]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args, "--configfile", *CONFIGS]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-6000:]}")
    return proc, seconds


def _results(workdir: Path) -> dict[str, bytes]:
    root = workdir / "results"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and str(p.relative_to(root)) not in NOT_COMPARED}


def _rules_run(stderr: str) -> set[str]:
    return set(re.findall(r"^(?:local)?(?:rule|checkpoint) (\S+):$", stderr, re.M))


def test_reduced_run_on_slurm_matches_a_local_run(cluster, tmp_path):
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    slurm.mkdir()
    local_proc, local_seconds = _snakemake(local, "--cores", "2")
    proc, slurm_seconds = _snakemake(slurm, "--profile", str(REPO / "profiles" / "slurm"), env=cluster)

    # The reduced config runs every rule that makes a result file (the aggregate targets are
    # local rules) and every evaluation method.
    rules = _rules_run(local_proc.stderr)
    for rule in ("demo_dataset", "manifest", "dataset_overview", "extract_audio", "extract_frames", "build_mixture", "train_vision",
                 "vision_labels", "audio_tags", "video_bases", "miml_data", "train_miml", "select_dictionary",
                 "oracle_dictionary", "separate_nmf", "separate_irm", "evaluate_mixture", "evaluate_vision",
                 "evaluation_summary", "showcase", "runtimes", "duet_reference", "evaluate_duet", "train_probe",
                 "probe_mixture", "probe_report", "deep_data", "train_deep", "separate_deep", "train_localization",
                 "localization_maps", "evaluate_localization"):
        assert rule in rules, f"the reduced config does not run {rule}"
    methods = (local / "results" / "eval" / "methods.tsv").read_text()
    for method in ("mixture", "irm", "oracle_nmf", "miml_nmf", "miml_nmf_vision", "miml_nmf_truth", "deep"):
        assert f"\n{method}\t" in methods

    # Every job went through sbatch, and SLURM's accounting saw each one complete.
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", proc.stderr)
    assert len(job_ids) > 30
    sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State,Account", "-j", ",".join(job_ids)],
                           capture_output=True, text=True, check=True).stdout
    states = {line.split("|")[0]: line.split("|")[1:] for line in sacct.splitlines() if line}
    assert set(states) == set(job_ids)
    assert all(state == "COMPLETED" and account == cluster["AVSEP_SLURM_ACCOUNT"]
               for state, account in states.values())

    # The same results, byte for byte.
    a, b = _results(local), _results(slurm)
    assert sorted(a) == sorted(b) and "deep/model.pt" in a and "localization/av/model.pt" in a
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"{len(differ)} files differ, e.g. {differ[:5]}"

    # Issue 19's figure: the SLURM run's wall time against the local run's, same node.
    from avsep.bench.workflow import machine

    ratio = slurm_seconds / local_seconds
    overhead = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "config": "tests/config/tiny.yaml",
                "local_seconds": round(local_seconds, 1), "slurm_seconds": round(slurm_seconds, 1),
                "ratio": round(ratio, 2), "target_ratio": 1.5, "slurm_jobs": len(job_ids),
                "added_seconds": round(slurm_seconds - local_seconds, 1),
                "methods": (local / "results" / "eval" / "methods.tsv").read_text()}
    (REPO / "benchmarks").mkdir(exist_ok=True)
    (REPO / "benchmarks" / "slurm_overhead.json").write_text(json.dumps(overhead, indent=2) + "\n")
    print(f"\nlocal {local_seconds:.0f} s, SLURM {slurm_seconds:.0f} s ({len(job_ids)} SLURM jobs): "
          f"SLURM/local overhead ratio {ratio:.2f} ({'within' if ratio <= 1.5 else 'OVER'} the 1.5 target)")
