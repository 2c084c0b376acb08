"""The benchmarks' arithmetic and records: the scale benchmark's costs and MUSIC projection,
and the README's speed figures written from the records (never typed in)."""

import json

import pandas as pd
import pytest

from avsep.bench import readme
from avsep.bench.scale import project, report_lines, summarize


def _jobs():
    # Two per-video rules (1 and 2 threads), a training job, a test-side rule and a summary.
    return pd.DataFrame([
        {"rule": "video_bases", "jobs": 64, "total_s": 320.0, "max_s": 6.0, "peak_rss_mb": 900.0},
        {"rule": "train_vision", "jobs": 1, "total_s": 100.0, "max_s": 100.0, "peak_rss_mb": 1500.0},
        {"rule": "select_dictionary", "jobs": 8, "total_s": 40.0, "max_s": 5.0, "peak_rss_mb": 800.0},
        {"rule": "separate_nmf", "jobs": 50, "total_s": 200.0, "max_s": 5.0, "peak_rss_mb": 700.0},
        {"rule": "evaluation_summary", "jobs": 1, "total_s": 3.0, "max_s": 3.0, "peak_rss_mb": 300.0},
    ])


def test_projection_scales_each_rule_by_what_its_work_grows_with():
    p = project(_jobs(), train_hours=1.0, test_minutes=25.0, to_train_hours=45.0, to_test_minutes=50.0, cores=16)
    # Per-video jobs: 45x the audio, their core-seconds over 16 cores (video_bases: 1 thread,
    # select_dictionary: 2 threads).
    assert p["rules"]["video_bases"] == pytest.approx(320 * 45 / 16)
    assert p["rules"]["select_dictionary"] == pytest.approx(40 * 45 * 2 / 16)
    # A single training job: 45x at its measured speed, whatever the node.
    assert p["rules"]["train_vision"] == pytest.approx(100 * 45)
    # Test-side jobs grow with the minutes of mixture; the summary stays as measured.
    assert p["rules"]["separate_nmf"] == pytest.approx(200 * 2 / 16)
    assert p["rules"]["evaluation_summary"] == pytest.approx(3.0)
    assert p["serial_s"] == pytest.approx(4500 + 3)
    assert p["wall_s"] == pytest.approx(p["serial_s"] + p["parallel_s"], abs=0.1)
    # More cores shorten only the per-item part.
    wider = project(_jobs(), train_hours=1.0, test_minutes=25.0, to_train_hours=45.0, to_test_minutes=50.0, cores=32)
    assert wider["serial_s"] == p["serial_s"] and wider["parallel_s"] == pytest.approx(p["parallel_s"] / 2, abs=0.1)


def _record():
    stages = pd.DataFrame([
        {"stage": "generate the dataset", "target": "demo_dataset", "wall_s": 100.0, "jobs": 1, "job_s": 99.0, "rules": "demo_dataset"},
        {"stage": "NMF bases", "target": "bases", "wall_s": 120.0, "jobs": 64, "job_s": 320.0, "rules": "video_bases"},
        {"stage": "vision: train + label", "target": "vision", "wall_s": 60.0, "jobs": 1, "job_s": 100.0, "rules": "train_vision"},
        {"stage": "separate", "target": "separate", "wall_s": 150.0, "jobs": 50, "job_s": 200.0, "rules": "separate_nmf"},
    ])
    return summarize(stages, _jobs(), cores=2, project_cores=16, train_minutes=60.0, test_minutes=25.0, dag_s=2.0)


def test_scale_record_totals_without_generation_and_costs_per_hour_and_minute():
    r = _record()
    assert r["generation_s"] == 100.0 and r["total_s"] == 330.0
    assert r["train_side_s"] == 180.0 and r["s_per_train_hour"] == 180.0
    assert r["test_side_s"] == 150.0 and r["s_per_test_minute"] == 6.0
    text = "\n".join(report_lines(json.loads(json.dumps(r))))
    assert "330.0 s (5.5 min) on 2 cores, OVER the 5-minute target" in text
    assert "180 s per hour of training audio" in text and "6.0 s per minute of test mixture" in text
    assert "every rule's peak under 2 GiB" in text


def test_readme_speed_figures_come_from_the_records_and_nothing_else_changes(tmp_path):
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "scale.json").write_text(json.dumps(_record()))
    (bench / "slurm_overhead.json").write_text(json.dumps(
        {"date": "2026-12-06", "local_seconds": 60.0, "slurm_seconds": 84.0, "ratio": 1.4, "slurm_jobs": 40}))
    before = f"# x\n\n## Speed\n\nProse stays.\n\n{readme.BEGIN}\nold figures 7.5 min\n{readme.END}\n\n## Next\n"
    path = tmp_path / "README.md"
    path.write_text(before)
    assert readme.update(path, bench)
    text = path.read_text()
    assert text.startswith("# x\n\n## Speed\n\nProse stays.\n\n") and text.endswith(f"{readme.END}\n\n## Next\n")
    assert "old figures" not in text
    assert "| NMF bases | 120.0 | 64 | 320.0 |" in text
    assert "**330 s (5.5 min)**, over" not in text and "**330 s (5.5 min)**, **over** the 5-minute target" in text
    assert "a ratio of **1.40**, within the 1.5 target" in text
    assert "**The demo from scratch**: not measured yet; `make bench` measures it." in text
    assert not readme.update(path, bench)  # written again from the same records: unchanged


def test_bsseval_record_renders_every_code_and_names_one_that_failed(tmp_path):
    from avsep.bench.bsseval import main as bsseval

    record = bsseval(["--seconds", "0.5", "--sample-rate", "8000", "--methods", "3", "--threads", "1",
                      "--out", str(tmp_path / "bsseval.json")])
    shared = record["codes"]["shared"]
    assert all(v < 1e-6 for v in shared["max_abs_diff_db"].values())  # the backend agrees with mir_eval
    record["codes"]["broken"] = {"failed": "RuntimeError: no"}
    (tmp_path / "bsseval.json").write_text(json.dumps(record))
    text = readme.render(tmp_path)
    assert "**BSS Eval of one testset25 mixture** (`make bench`" in text
    assert "| shared |" in text and "| mir_eval |" in text and "| broken | failed | | RuntimeError: no |" in text


def test_readme_keeps_the_parts_whose_record_is_missing_when_asked(tmp_path):
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "nmf.json").write_text(json.dumps({"date": "2026-12-01", "threads": 2, "avsep_chunks_per_s": 3.2,
                                                "sklearn_chunks_per_s": 1.0, "speedup": 3.2,
                                                "avsep_objective": 1.0, "sklearn_objective": 1.0}))
    path = tmp_path / "README.md"
    path.write_text(f"{readme.BEGIN}\n\n**SLURM against local** (`make test-slurm`, 2026-11-30):\n\nratio 2.00.\n\n"
                    f"{readme.END}\n")
    readme.update(path, bench, keep=True)
    text = path.read_text()
    assert "ratio 2.00." in text and "**3.2x**" in text
    assert "**The testset25-sized workload**: not measured yet; `make bench-scale` measures it." in text


def test_readme_without_the_block_is_refused(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("# no block\n")
    with pytest.raises(ValueError, match="no speed-figures block"):
        readme.update(path, tmp_path)
    assert path.read_text() == "# no block\n"
