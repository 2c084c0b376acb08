"""The scale benchmark: a testset25-sized workload, stage by stage, with wall times.

``make bench-scale`` runs ``python -m avsep.bench.scale``: the workflow on
``config/config.yaml`` + ``config/scale.yaml`` in a scratch folder, one stage target after
the other (each stage's wall time includes Snakemake's start-up and DAG building), then the
time a dry run of the finished workflow takes to build its whole DAG. The seed reported
about 4.5 h for frames (2 cores), 1.5 h for training and 1.5 h for separation (8 cores).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from avsep.bench.workflow import summarize_benchmarks

REPO = Path(__file__).resolve().parents[2]
STAGES = [
    ("generate the dataset", "demo_dataset"),
    ("manifest (probe every video)", "manifest"),
    ("extract audio and frames", "extract"),
    ("build the test mixtures", "mixtures"),
    ("vision: train + label", "vision"),
    ("NMF bases", "bases"),
    ("MIML: train + select", "miml"),
    ("separate", "separate"),
    ("evaluate", "evaluate"),
    ("the rest (overview, report items)", "all"),
]


def _snakemake(workdir: Path, cores: str, configs: list[str], *args: str) -> float:
    # Targets first: --quiet and --configfile take every word after them.
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile"), "--cores", cores,
           "--quiet", "all", "--configfile", *configs]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"snakemake {' '.join(args)} failed after {seconds:.0f} s")
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+",
                        default=[str(REPO / "config/config.yaml"), str(REPO / "config/scale.yaml")])
    parser.add_argument("--cores", default="2")
    parser.add_argument("--workdir", type=Path, help="keep the results here (default: a temporary folder)")
    args = parser.parse_args(argv)
    # Snakemake runs in the scratch folder: config paths must not be relative to here.
    args.configfile = [str(Path(c).resolve()) for c in args.configfile]
    with tempfile.TemporaryDirectory(prefix="avsep-scale-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        rows = []
        for name, target in STAGES:
            seconds = _snakemake(workdir, args.cores, args.configfile, target)
            rows.append({"stage": name, "target": target, "wall_s": round(seconds, 1)})
            print(f"{name:<36} {seconds:8.1f} s", flush=True)
        dag = _snakemake(workdir, args.cores, args.configfile, "--dry-run")
        jobs = summarize_benchmarks(workdir)
        table = pd.DataFrame(rows)
        audio_min = _training_minutes(workdir)
    total = float(table["wall_s"].sum())
    print()
    print(table.to_string(index=False))
    print(f"\ntotal wall time {total:.1f} s ({total / 60:.1f} min) on {args.cores} cores; "
          f"seed: about 7.5 h (4.5 h frames, 1.5 h training, 1.5 h separation)")
    print(f"building the whole DAG (dry run of the finished workflow): {dag:.1f} s")
    print(f"training audio: {audio_min:.1f} min; job time per rule:")
    print(jobs.sort_values("total_s", ascending=False).to_string(index=False))


def _training_minutes(workdir: Path) -> float:
    manifest = pd.read_csv(workdir / "results" / "manifest.tsv", sep="\t")
    train = manifest[(manifest["kind"] == "solo") & (manifest["split"] == "train")]
    return float(train["duration"].sum() / 60)


if __name__ == "__main__":
    main()
