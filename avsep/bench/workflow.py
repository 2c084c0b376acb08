"""Time the workflow: run it in a scratch folder and summarise Snakemake's benchmark files.

``make bench`` runs ``python -m avsep.bench`` (this module, through ``__main__.py``): the
demo config from scratch, then a table of wall time and peak memory per rule, and the
total (also in ``benchmarks/demo.json``). :func:`summarize_benchmarks` also makes the ``runtimes`` rule's table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def machine() -> str:
    """The CPU model and the CPUs visible, for the benchmark records."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs visible"


def summarize_benchmarks(workdir: str | Path, only=None) -> pd.DataFrame:
    """One row per rule from ``benchmarks/**/*.tsv``: jobs, total and max seconds, peak RSS.

    ``only``: the benchmark files to read (paths), e.g. those of one stage; default all.

    A job run in a warm child (:mod:`avsep.warm`) has its true peak memory in
    ``benchmarks/warm_usage.tsv``, since Snakemake's benchmark measured only its client;
    the peak per rule is the larger of the two.
    """
    from avsep.warm import USAGE_FILE

    usage_path = Path(workdir, USAGE_FILE)
    rows = []
    for path in sorted(Path(workdir, "benchmarks").rglob("*.tsv")):
        if path == usage_path or (only is not None and path not in only):
            continue
        rel = path.relative_to(Path(workdir, "benchmarks"))
        rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        table = pd.read_csv(path, sep="\t")
        rows.append({"rule": rule, "s": float(table["s"].iloc[-1]),
                     "max_rss_mb": float(pd.to_numeric(table["max_rss"], errors="coerce").iloc[-1])})
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "total_s", "max_s", "peak_rss_mb"])
    df = pd.DataFrame(rows)
    table = (
        df.groupby("rule")
        .agg(jobs=("s", "size"), total_s=("s", "sum"), max_s=("s", "max"), peak_rss_mb=("max_rss_mb", "max"))
    )
    if usage_path.exists():
        warm = pd.read_csv(usage_path, sep="\t")
        warm_peak = pd.to_numeric(warm["max_rss_mb"], errors="coerce").groupby(warm["rule"]).max()
        table["peak_rss_mb"] = pd.concat([table["peak_rss_mb"], warm_peak.reindex(table.index)], axis=1).max(axis=1)
    return table.round(2).reset_index()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+", default=[str(REPO / "config/config.yaml"),
                                                             str(REPO / "config/demo.yaml")])
    parser.add_argument("--cores", default="2")
    parser.add_argument("--workdir", type=Path, help="keep results here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "demo.json")
    parser.add_argument("targets", nargs="*")
    args = parser.parse_args(argv)
    # Snakemake runs in the scratch folder: config paths must not be relative to here.
    args.configfile = [str(Path(c).resolve()) for c in args.configfile]
    with tempfile.TemporaryDirectory(prefix="avsep-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        # Targets first: --quiet and --configfile take every word after them.
        cmd = [sys.executable, "-m", "snakemake", *args.targets, "-s", str(REPO / "Snakefile"),
               "--cores", args.cores, "--quiet", "rules", "--configfile", *args.configfile]
        start = time.perf_counter()
        subprocess.run(cmd, cwd=workdir, check=True)
        wall = time.perf_counter() - start
        table = summarize_benchmarks(workdir)
    print(table.to_string(index=False))
    print(f"\nwall time of the whole workflow: {wall:.1f} s on {args.cores} cores")
    for line in stage_targets(table):
        print(line)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "date": date.today().isoformat(), "machine": machine(), "cores": args.cores,
        "configs": [Path(c).name for c in args.configfile], "wall_s": round(wall, 1),
        "job_s": round(float(table["total_s"].sum()), 1), "jobs": int(table["jobs"].sum()),
        "stage_targets": stage_targets(table), "rules": table.to_dict(orient="records")}, indent=2) + "\n")
    print(f"-> {args.out}")


#: Job-time targets of stages, in seconds of job time summed over the stage's rules.
STAGE_TARGETS = {"vision training and labelling": (("train_vision", "vision_labels"), 180.0),
                 "MIML training and selection": (("miml_data", "train_miml", "select_dictionary"), 180.0),
                 "deep separator training": (("train_deep",), 240.0)}


def stage_targets(table: pd.DataFrame) -> list[str]:
    """One line per stage of :data:`STAGE_TARGETS`: its job time against the target."""
    lines = []
    for stage, (rules, target) in STAGE_TARGETS.items():
        mine = table[table["rule"].isin(rules)]
        total = float(mine["total_s"].sum())
        verdict = "within" if total <= target else "OVER"
        lines.append(f"{stage}: {total:.1f} s of job time over {int(mine['jobs'].sum())} jobs "
                     f"({verdict} the {target:.0f} s target)")
    return lines


if __name__ == "__main__":
    main()
