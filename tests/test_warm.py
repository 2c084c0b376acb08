"""Warm start (avsep.warm): jobs forked from a resident server behave as fresh processes.

Each test runs a small Snakefile of its own whose script calls ``hand_over(snakemake)`` as the
workflow's scripts do, with a private server folder (``AVSEP_WARM_DIR``) and a short idle time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from avsep.bench.workflow import summarize_benchmarks
from conftest import LOCAL_ENV

SNAKEFILE = """
rule all:
    input: expand("out/{{i}}.txt", i=range({n}))

rule one:
    output: "out/{{i}}.txt"
    log: "logs/{{i}}.log"
    benchmark: "benchmarks/one/{{i}}.tsv"
    threads: {threads}
    script: "job.py"
"""

# What a job reports: whether numpy was already imported before the script imported it (the
# server preloads it), its process ids, its folder and environment, and a computed value that
# must not depend on where it ran.
JOB = """
import sys
from avsep.warm import hand_over

hand_over(snakemake)
preloaded = "numpy" in sys.modules
import os
import numpy as np
import helper

value = np.random.default_rng(int(snakemake.wildcards.i)).standard_normal(1000).sum()
with open(snakemake.output[0], "w") as f:
    f.write(f"{preloaded}\\t{os.getpid()}\\t{os.getppid()}\\t{os.getcwd()}\\t{os.environ.get('AVSEP_PROBE')}"
            f"\\t{helper.VERSION}\\t{value!r}\\n")
"""


def _workflow(tmp_path: Path, *, n=3, threads=1, job=JOB) -> Path:
    work = tmp_path / "wf"
    work.mkdir()
    (work / "Snakefile").write_text(SNAKEFILE.format(n=n, threads=threads))
    (work / "job.py").write_text(job)
    (work / "helper.py").write_text("VERSION = 1\n")
    return work


def _env(tmp_path: Path, **extra) -> dict:
    env = {**LOCAL_ENV, "AVSEP_WARM_DIR": str(tmp_path / "warm"), "AVSEP_WARM_IDLE": "20",
           "AVSEP_PROBE": "seen", "PYTHONPATH": str(tmp_path / "wf")}
    env.pop("AVSEP_WARM", None)
    env.pop("SLURM_JOB_ID", None)
    return {**env, **extra}


def _run(work: Path, env: dict, *targets: str, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", "2"], cwd=work,
                          env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(proc.stdout[-3000:] + proc.stderr[-3000:])
    return proc


def _rows(work: Path) -> list[list[str]]:
    return [p.read_text().rstrip("\n").split("\t") for p in sorted((work / "out").glob("*.txt"))]


def _stop_servers(tmp_path: Path) -> None:
    for pid in subprocess.run(["pgrep", "-f", f"avsep.warm serve {tmp_path}"], capture_output=True,
                              text=True).stdout.split():
        os.kill(int(pid), signal.SIGTERM)


@pytest.fixture
def servers(tmp_path):
    yield
    _stop_servers(tmp_path)


def test_jobs_run_in_a_warm_child_and_compute_what_a_fresh_process_does(tmp_path, servers):
    work = _workflow(tmp_path)
    _run(work, _env(tmp_path, AVSEP_WARM="0"))
    cold = _rows(work)
    assert [r[0] for r in cold] == ["False"] * 3  # a fresh interpreter had imported nothing

    (work / "out").rename(work / "cold")
    _run(work, _env(tmp_path))
    warm = _rows(work)
    assert [r[0] for r in warm] == ["True"] * 3  # numpy came with the server
    assert len({r[2] for r in warm}) == 1  # all three forked by one server...
    assert len({r[1] for r in warm}) == 3  # ...each in a process of its own
    for w, c in zip(warm, cold):
        assert w[3] == c[3] == str(work)  # the job's folder
        assert w[4] == c[4] == "seen"  # and its environment
        assert w[6] == c[6]  # the same number to the last bit

    usage = pd.read_csv(work / "benchmarks" / "warm_usage.tsv", sep="\t")
    assert sorted(usage["output"]) == [f"out/{i}.txt" for i in range(3)]
    assert (usage["rule"] == "one").all()
    # The child's own peak (numpy imported), far above a bare client's 10-20 MB.
    assert (usage["max_rss_mb"] > 25).all()
    table = summarize_benchmarks(work).set_index("rule")
    assert list(table.index) == ["one"] and table.loc["one", "jobs"] == 3
    assert table.loc["one", "peak_rss_mb"] == pytest.approx(usage["max_rss_mb"].max(), abs=0.01)


def test_an_edited_module_is_read_afresh_by_the_next_job(tmp_path, servers):
    work = _workflow(tmp_path, n=2)
    env = _env(tmp_path)
    _run(work, env, "out/0.txt")
    (work / "helper.py").write_text("VERSION = 2\n")
    _run(work, env, "out/1.txt")
    first, second = _rows(work)
    assert first[2] == second[2]  # the same server forked both
    assert (first[5], second[5]) == ("1", "2")


def test_a_failing_job_fails_with_its_traceback_and_status(tmp_path, servers):
    job = JOB.replace("value =", "raise ValueError('boom in ' + snakemake.wildcards.i)\nvalue =")
    work = _workflow(tmp_path, n=1, job=job)
    proc = _run(work, _env(tmp_path), check=False)
    assert proc.returncode != 0
    assert "ValueError: boom in 0" in proc.stderr
    assert not (work / "out" / "0.txt").exists()

    exiting = JOB.replace("value =", "sys.exit(3)\nvalue =")
    (work / "job.py").write_text(exiting)
    proc = _run(work, _env(tmp_path), check=False)
    assert proc.returncode != 0
    assert "exit status 3" in proc.stderr or "returned non-zero exit status 3" in proc.stderr


# A job that records its pid, then never returns from a C call that holds the GIL (sum over an
# endless iterator): nothing in its own process can act on its client's death.
STUCK = """
import itertools, os
from avsep.warm import hand_over

hand_over(snakemake)
with open("started", "w") as f:
    f.write(str(os.getpid()))
sum(itertools.count())
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # a killed child the server has not reaped yet is dead


def test_a_run_killed_outright_takes_its_warm_jobs_with_it(tmp_path, servers):
    # As a lost node or the OOM killer would: SIGKILL to Snakemake's process group, which the
    # warm child is not in. The job must not run on (and write results) after its run died.
    work = _workflow(tmp_path, n=1, job=STUCK)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1"], cwd=work,
                            env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    started = work / "started"
    try:
        for _ in range(1200):
            if started.exists() and started.read_text():
                break
            assert proc.poll() is None, "the workflow ended before its job started"
            time.sleep(0.05)
        else:
            pytest.fail("the job never started")
        pid = int(started.read_text())
        assert _alive(pid) and pid != proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    for _ in range(200):  # the job holds the GIL forever: only the server can end it
        if not _alive(pid):
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the warm child ran on after its run was killed")


@pytest.mark.parametrize("switch", [{"AVSEP_WARM": "0"}, {"SLURM_JOB_ID": "42"}])
def test_off_switch_and_slurm_run_the_script_in_its_own_process(tmp_path, switch):
    work = _workflow(tmp_path, n=1)
    _run(work, _env(tmp_path, **switch))
    (row,) = _rows(work)
    assert row[0] == "False"
    assert not (work / "benchmarks" / "warm_usage.tsv").exists()
    assert not (tmp_path / "warm").exists()


def test_a_server_that_cannot_start_leaves_the_job_to_run_as_before(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    work = _workflow(tmp_path, n=1)
    proc = _run(work, _env(tmp_path, AVSEP_WARM_DIR=str(blocker / "warm")))
    (row,) = _rows(work)
    assert row[0] == "False"
    assert "running without the warm server" in proc.stderr


def test_every_rule_script_hands_over_before_its_heavy_imports():
    import ast

    from conftest import REPO

    for script in sorted((REPO / "scripts").glob("*.py")):
        body = ast.parse(script.read_text()).body
        doc, imp, call = body[0], body[1], body[2]
        assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant), script.name
        assert isinstance(imp, ast.ImportFrom) and imp.module == "avsep.warm", script.name
        assert (isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
                and call.value.func.id == "hand_over"), script.name
