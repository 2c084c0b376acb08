"""The workflow on a real SLURM cluster (make test-slurm): the demo config end to end through
profiles/slurm, every job submitted with sbatch, and the same results as a local run.

The cluster is a single node started on this machine by tests/cluster/cluster.sh, which
installs what it needs (Debian, root) and saves the process ids of the daemons it starts;
the fixture stops them by those ids. Not part of `make test`: it takes about twice the demo.
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
CONFIGS = [str(REPO / "config" / "config.yaml"), str(REPO / "config" / "demo.yaml")]
# The run times measure each run: they differ by nature.
NOT_COMPARED = ("runtimes.tsv", "runtimes.png")


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
            if p.is_file() and p.name not in NOT_COMPARED}


def test_demo_on_slurm_matches_a_local_run(cluster, tmp_path):
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    local.mkdir()
    slurm.mkdir()
    _, local_seconds = _snakemake(local, "--cores", "2")
    proc, slurm_seconds = _snakemake(slurm, "--profile", str(REPO / "profiles" / "slurm"), env=cluster)

    # Every job went through sbatch, and SLURM's accounting saw each one complete.
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", proc.stderr)
    assert len(job_ids) > 100
    sacct = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State,Account", "-j", ",".join(job_ids)],
                           capture_output=True, text=True, check=True).stdout
    states = {line.split("|")[0]: line.split("|")[1:] for line in sacct.splitlines() if line}
    assert set(states) == set(job_ids)
    assert all(state == "COMPLETED" and account == cluster["AVSEP_SLURM_ACCOUNT"]
               for state, account in states.values())

    # The same results, byte for byte.
    a, b = _results(local), _results(slurm)
    assert sorted(a) == sorted(b)
    differ = [name for name in a if a[name] != b[name]]
    assert not differ, f"{len(differ)} files differ, e.g. {differ[:5]}"

    overhead = {"local_seconds": round(local_seconds, 1), "slurm_seconds": round(slurm_seconds, 1),
                "slurm_jobs": len(job_ids), "added_seconds": round(slurm_seconds - local_seconds, 1),
                "methods": (local / "results" / "eval" / "methods.tsv").read_text()}
    (REPO / "benchmarks").mkdir(exist_ok=True)
    (REPO / "benchmarks" / "slurm_overhead.json").write_text(json.dumps(overhead, indent=2) + "\n")
    print(f"\nlocal {local_seconds:.0f} s, SLURM {slurm_seconds:.0f} s ({len(job_ids)} jobs): "
          f"SLURM adds {slurm_seconds - local_seconds:.0f} s")
