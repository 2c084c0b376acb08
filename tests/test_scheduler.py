"""Snakemake's scheduler re-evaluates once per timespan while jobs wait, not once per pass
ever run (avsep/scheduler.py)."""

import subprocess
import sys
import threading
import time
from pathlib import Path

from snakemake.scheduling.job_scheduler import JobScheduler

from avsep.scheduler import _coalesced, coalesce_reevaluations


def _passes(reevaluate, finishes=20, delay=0.1, seconds=1.0):
    """A scheduling loop as Snakemake's: each pass ends with jobs still waiting for cores,
    so it asks for a re-evaluation; ``finishes`` jobs finish during the first tenth of the
    run, each waking the loop once. Returns the passes run in ``seconds``."""
    sched = type("Scheduler", (), {})()
    sched._open_jobs = threading.Semaphore(0)
    for _ in range(finishes):
        sched._open_jobs.release()
    passes, end = 0, time.monotonic() + seconds
    while sched._open_jobs.acquire(timeout=max(0.0, end - time.monotonic())):
        if time.monotonic() >= end:
            break
        passes += 1
        reevaluate(sched, delay)
    return passes


def test_passes_stay_at_one_per_timespan_however_many_jobs_finished():
    # 20 finished jobs, 10 timespans: one chain gives 10 passes beside the 20 wake-ups.
    passes = _passes(_coalesced)
    assert passes <= 20 + 10 + 5, passes
    # Snakemake's own method keeps every chain alive: about 20 chains x 10 timespans.
    # (This is the behaviour the fix removes; were it gone upstream, the fix is moot.)
    original = JobScheduler.__dict__.get("_avsep_original_reevaluation", JobScheduler.__dict__["_schedule_reevalutation"])
    assert not getattr(original, "_avsep_coalesced", False)
    assert _passes(original) > 3 * passes


def test_the_rate_limiter_still_gets_its_reevaluation():
    # One request, nothing else waking the loop: the pass comes one delay later, and the
    # next request after it is honoured (the fired timer no longer counts as pending).
    sched = type("Scheduler", (), {})()
    sched._open_jobs = threading.Semaphore(0)
    for _ in range(3):
        t0 = time.monotonic()
        _coalesced(sched, 0.05)
        assert sched._open_jobs.acquire(timeout=5)
        assert time.monotonic() - t0 >= 0.04
    # An earlier request replaces a later pending one.
    _coalesced(sched, 30.0)
    _coalesced(sched, 0.05)
    assert sched._open_jobs.acquire(timeout=5)
    timer = sched._avsep_reevaluation["timer"]
    assert timer is None or timer.daemon


def test_installed_once_on_a_class_that_has_the_method_and_nowhere_else():
    cls = type("Scheduler", (), {"_schedule_reevalutation": lambda self, delay: None})
    original = cls._schedule_reevalutation
    assert coalesce_reevaluations(cls) is True
    assert cls._schedule_reevalutation is _coalesced
    assert cls._avsep_original_reevaluation is original
    assert coalesce_reevaluations(cls) is False
    assert coalesce_reevaluations(type("Other", (), {})) is False


def test_the_workflow_installs_it_in_snakemake(tmp_path):
    # Parsing the Snakefile (a dry run) must leave Snakemake's scheduler patched.
    code = (
        "import sys\n"
        "from snakemake.cli import main\n"
        "from snakemake.scheduling.job_scheduler import JobScheduler\n"
        "try:\n"
        "    main(['-s', sys.argv[1], '--directory', sys.argv[2], '--dry-run', '--quiet', 'all', '--cores', '1'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('PATCHED' if getattr(JobScheduler._schedule_reevalutation, '_avsep_coalesced', False) else 'PLAIN')\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code, str(root / "Snakefile"), str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "PATCHED", out.stdout[-2000:] + out.stderr[-2000:]
