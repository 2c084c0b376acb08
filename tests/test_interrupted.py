"""A run killed in the middle of the bases stage (SIGKILL to the whole Snakemake process
group, as a lost node or an OOM killer would) resumes to the results of a run never killed.

The killed run starts from a copy of the session's tiny run without its bases, MIML and
dictionary results (extraction and vision stay: they are not what is killed), and builds the
MIML stage's target: the bases, MIML training and basis selection, the stages during and
after the kill. What it remade is compared file by file with the tiny run's. Two whole
runs giving byte-identical results is the cluster test's comparison (tests/cluster)."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from avsep.bases import read_bases
from conftest import LOCAL_ENV, run_snakemake, snakemake_command

pytestmark = pytest.mark.workflow

# The stage target the killed run and its resume build (results/dictionary/miml.h5 and what it
# needs), and the results it remakes once the bases are gone.
TARGET = "miml"
REMADE = ("bases", "miml", "dictionary")


def _results(folder: Path) -> dict[str, bytes]:
    # Snakemake marks a finished directory output with an empty .snakemake_timestamp; a kill
    # between a job's end and that mark leaves a whole directory without it (the next run
    # takes the folder's own time): bookkeeping, not a result.
    return {str(p.relative_to(folder)): p.read_bytes() for p in (folder / "results").rglob("*")
            if p.is_file() and p.name != ".snakemake_timestamp"}


def _finished(bases: Path) -> list[Path]:
    """Bases files under their final names (pathlib's glob also matches dot files)."""
    return [p for p in bases.glob("*.h5") if not p.name.startswith(".")]


def _start(workdir: Path) -> subprocess.Popen:
    return subprocess.Popen(snakemake_command(TARGET), cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=LOCAL_ENV, start_new_session=True)


def _kill_during_bases(workdir: Path, timeout: float = 600) -> tuple[int, int]:
    """Start a run, wait until a bases job has just started writing while at least one bases
    file is done, SIGKILL the process group. Returns (bases files done, bases jobs caught
    writing).

    The job must be one that started after a file was finished: the tiny run's videos are all
    alike, so the jobs started together finish together, and one caught writing next to the
    first finished file may be a millisecond from its rename."""
    proc = _start(workdir)
    bases = workdir / "results" / "bases"
    deadline = time.monotonic() + timeout
    seen: set[Path] | None = None  # the temporary files of earlier looks
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if bases.is_dir():
                writing = set(bases.glob(".*.tmp.h5"))
                done = _finished(bases)
                fresh = writing - seen if seen is not None else set()  # begun since the last look
                seen = (seen or set()) | writing
                if done and fresh:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    return len(done), len(writing)
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    pytest.fail("the run never had a bases job writing next to a finished one")


def test_killed_mid_bases_resumes_to_the_uninterrupted_results(tiny_run, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    for name in REMADE:
        shutil.rmtree(work / "results" / name)
    done, writing = _kill_during_bases(work)
    bases = work / "results" / "bases"
    # What the kill left: every file under its final name is whole; the killed jobs' partial
    # files are only under temporary names, and later stages never started.
    finished = _finished(bases)
    assert len(finished) >= done  # a job may have renamed its file between the look and the kill
    for path in finished:
        read_bases(path)
    assert writing >= 1 and list(bases.glob(".*.tmp.h5"))
    assert not (work / "results" / "dictionary").exists()

    # The documented recovery: unlock, then the same command (the profile reruns what was
    # running when the run died).
    run_snakemake(work, "--unlock")
    run_snakemake(work, TARGET)

    resumed, reference = _results(work), _results(tiny_run)
    stale = sorted(set(resumed) - set(reference))
    assert not stale, f"the resumed run left files a whole run does not make (stale temporaries?): {stale}"
    remade = sorted(p for p in resumed if p.split("/")[1] in REMADE)
    assert "results/dictionary/miml.h5" in remade
    assert len(_finished(bases)) == len(_finished(tiny_run / "results" / "bases"))
    assert {"results/miml/model.pt", "results/miml/train.h5"} <= set(remade)
    differing = [p for p in remade if resumed[p] != reference[p]]
    assert not differing, f"the resumed run differs from the uninterrupted one in {differing}"
