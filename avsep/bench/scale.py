"""The scale benchmark: a testset25-sized workload, stage by stage, with wall times.

``make bench-scale`` runs ``python -m avsep.bench.scale``: the workflow on
``config/config.yaml`` + ``config/scale.yaml`` in a scratch folder, one stage target after
the other (each stage's wall time includes Snakemake's start-up and DAG building), then the
time a dry run of the finished workflow takes to build its whole DAG. It prints:

- the per-stage table: wall time and job time (Snakemake's benchmark files of the jobs each
  stage ran);
- the total from videos to the report, without the generation of the synthetic dataset,
  against the 5-minute target (issue 19);
- the cost per hour of training audio and per minute of test mixture;
- a projection for full MUSIC on a bigger node (:func:`project`);
- the job time and peak memory per rule, against the 2 GiB budget per job.

Everything goes to ``benchmarks/scale.json`` as well, from which ``python -m
avsep.bench.readme`` writes the README's Speed section. The seed reported about 4.5 h for
frames (2 cores), 1.5 h for training and 1.5 h for separation (8 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

from avsep.bench.workflow import machine, summarize_benchmarks
from avsep.jobs import JOBS

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


#: Target of issue 19: the scale workload, from videos to the report, without generating
#: the synthetic dataset, in this many seconds of wall time on 2 cores.
TARGET_S = 300.0

#: What each rule's work grows with, for the projection: ``train`` rules with the hours of
#: solo audio (every video is probed, extracted and labelled; the training stages read the
#: training split), ``test`` rules with the minutes of test mixture; any other rule (the
#: summaries and the report items) stays as measured.
TEST_RULES = frozenset({
    "build_mixture", "audio_tags", "separate_nmf", "separate_irm", "separate_deep", "evaluate_mixture", "duet_reference",
    "evaluate_duet", "localization_maps", "evaluate_localization", "probe_mixture", "probe_report", "showcase"})
FIXED_RULES = frozenset({"demo_dataset", "evaluation_summary", "evaluate_vision", "multisource_table", "runtimes",
                         "dataset_overview"})

#: Full MUSIC (Zhao et al. 2018, the 11-instrument solo set): 536 solo videos, about 45 h.
#: Its test side is taken as 256 mixtures of 10 s, Sound of Pixels' evaluation size.
MUSIC = {"train_hours": 45.0, "test_minutes": 256 * 10 / 60}


def project(jobs: pd.DataFrame, *, train_hours: float, test_minutes: float, to_train_hours: float,
            to_test_minutes: float, cores: int) -> dict:
    """Project the measured job times onto another workload and a node of ``cores`` cores.

    Each rule's job time is scaled by what its work grows with (:data:`TEST_RULES`,
    :data:`FIXED_RULES`, else training audio). A rule of one job (the training stages)
    runs alone at its measured speed, which is an upper bound: on a bigger node it would
    get more threads. The jobs of a rule of many jobs fill the node: their core-seconds
    (job time x the threads of :data:`avsep.jobs.JOBS`) are spread over ``cores``.

    Returns:
        ``{"wall_s", "serial_s", "parallel_s", "rules": {rule: projected seconds}}``.
    """
    serial = parallel = 0.0
    rules = {}
    for row in jobs.itertuples():
        if row.rule in FIXED_RULES:
            factor = 1.0
        elif row.rule in TEST_RULES:
            factor = to_test_minutes / test_minutes
        else:
            factor = to_train_hours / train_hours
        if row.jobs == 1:
            seconds = row.total_s * factor
            serial += seconds
        else:
            threads = JOBS[row.rule].threads if row.rule in JOBS else 1
            seconds = row.total_s * factor * threads / cores
            parallel += seconds
        rules[row.rule] = round(seconds, 1)
    return {"wall_s": round(serial + parallel, 1), "serial_s": round(serial, 1), "parallel_s": round(parallel, 1),
            "rules": rules}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="+",
                        default=[str(REPO / "config/config.yaml"), str(REPO / "config/scale.yaml")])
    parser.add_argument("--cores", default="2")
    parser.add_argument("--project-cores", type=int, default=16, help="the node of the MUSIC projection")
    parser.add_argument("--workdir", type=Path, help="keep the results here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "scale.json")
    args = parser.parse_args(argv)
    # Snakemake runs in the scratch folder: config paths must not be relative to here.
    args.configfile = [str(Path(c).resolve()) for c in args.configfile]
    with tempfile.TemporaryDirectory(prefix="avsep-scale-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        rows, seen = [], set()
        for name, target in STAGES:
            seconds = _snakemake(workdir, args.cores, args.configfile, target)
            # The jobs this stage ran: the benchmark files that appeared during it.
            done = set(_benchmark_files(workdir))
            stage_jobs = summarize_benchmarks(workdir, only=done - seen)
            seen = done
            rows.append({"stage": name, "target": target, "wall_s": round(seconds, 1),
                         "jobs": int(stage_jobs["jobs"].sum()), "job_s": round(float(stage_jobs["total_s"].sum()), 1),
                         "rules": " ".join(stage_jobs.sort_values("total_s", ascending=False)["rule"])})
            print(f"{name:<36} {seconds:8.1f} s", flush=True)
        dag = _snakemake(workdir, args.cores, args.configfile, "--dry-run")
        jobs = summarize_benchmarks(workdir)
        train_min, test_min = _training_minutes(workdir), _test_minutes(workdir)
    report = summarize(pd.DataFrame(rows), jobs, cores=int(args.cores), project_cores=args.project_cores,
                       train_minutes=train_min, test_minutes=test_min, dag_s=dag)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print("\n".join(report_lines(report)))
    print(f"\n-> {args.out}")


def summarize(stages: pd.DataFrame, jobs: pd.DataFrame, *, cores: int, project_cores: int, train_minutes: float,
              test_minutes: float, dag_s: float) -> dict:
    """The benchmark's figures as one JSON-able dict (what ``benchmarks/scale.json`` holds)."""
    generation = stages[stages["target"] == "demo_dataset"]
    workflow = stages[stages["target"] != "demo_dataset"]
    total = float(workflow["wall_s"].sum())
    train_side = workflow[workflow["target"].isin(["manifest", "extract", "vision", "bases", "miml"])]
    test_side = workflow[~workflow.index.isin(train_side.index)]
    music = project(jobs, train_hours=train_minutes / 60, test_minutes=test_minutes,
                    to_train_hours=MUSIC["train_hours"], to_test_minutes=MUSIC["test_minutes"], cores=project_cores)
    return {
        "date": date.today().isoformat(), "machine": machine(), "cores": cores,
        "stages": stages.to_dict(orient="records"),
        "generation_s": float(generation["wall_s"].sum()),
        "total_s": round(total, 1), "target_s": TARGET_S,
        "train_minutes": round(train_minutes, 1), "test_minutes": round(test_minutes, 1),
        "train_side_s": round(float(train_side["wall_s"].sum()), 1),
        "test_side_s": round(float(test_side["wall_s"].sum()), 1),
        "s_per_train_hour": round(float(train_side["wall_s"].sum()) / (train_minutes / 60), 1),
        "s_per_test_minute": round(float(test_side["wall_s"].sum()) / test_minutes, 1),
        "dag_s": round(dag_s, 1),
        "music": {**MUSIC, "cores": project_cores, **music},
        "rules": jobs.to_dict(orient="records"),
    }


def report_lines(r: dict) -> list[str]:
    """The printed report of :func:`summarize`'s dict."""
    stages = pd.DataFrame(r["stages"])[["stage", "wall_s", "jobs", "job_s"]]
    verdict = "within" if r["total_s"] <= r["target_s"] else "OVER"
    music = r["music"]
    rules = pd.DataFrame(r["rules"]).sort_values("total_s", ascending=False)
    over = rules[rules["peak_rss_mb"] >= 2048]
    lines = [stages.to_string(index=False), "",
             f"videos to report (without generating the dataset): {r['total_s']:.1f} s ({r['total_s'] / 60:.1f} min) "
             f"on {r['cores']} cores, {verdict} the {r['target_s'] / 60:.0f}-minute target; generation "
             f"{r['generation_s']:.1f} s; seed: about 7.5 h",
             f"building the whole DAG (dry run of the finished workflow): {r['dag_s']:.1f} s",
             f"training side (manifest to MIML): {r['train_side_s']:.1f} s for {r['train_minutes']:.1f} min of "
             f"training audio = {r['s_per_train_hour']:.0f} s per hour of training audio",
             f"test side (mixtures to report): {r['test_side_s']:.1f} s for {r['test_minutes']:.1f} min of test "
             f"mixture = {r['s_per_test_minute']:.1f} s per minute of test mixture",
             f"full MUSIC ({music['train_hours']:.0f} h of solo audio, {music['test_minutes']:.0f} min of test "
             f"mixture) on a {music['cores']}-core node: {music['wall_s'] / 3600:.2f} h projected "
             f"({music['serial_s'] / 3600:.2f} h in single jobs at their 2-core speed, "
             f"{music['parallel_s'] / 3600:.2f} h of per-item jobs spread over the node); target 2 h",
             "", "job time and peak memory per rule:", rules.to_string(index=False),
             "every rule's peak under 2 GiB" if over.empty else f"OVER 2 GiB: {', '.join(over['rule'])}"]
    return lines


def _benchmark_files(workdir: Path) -> list[Path]:
    return [p for p in Path(workdir, "benchmarks").rglob("*.tsv") if p.name != "warm_usage.tsv"]


def _training_minutes(workdir: Path) -> float:
    manifest = pd.read_csv(workdir / "results" / "manifest.tsv", sep="\t")
    train = manifest[(manifest["kind"] == "solo") & (manifest["split"] == "train")]
    return float(train["duration"].sum() / 60)


def _test_minutes(workdir: Path) -> float:
    """Minutes of test mixture: the built mixtures' lengths (their WAVs' headers)."""
    import soundfile as sf

    wavs = sorted(Path(workdir, "results", "mixtures").glob("*/mixture.wav"))
    return float(sum(sf.info(str(w)).duration for w in wavs) / 60)


if __name__ == "__main__":
    main()
