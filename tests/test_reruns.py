"""Partial reruns: what a change reruns, and what it leaves alone.

Each test works on a copy of the finished tiny run (outputs, times and Snakemake's records)
and asks Snakemake what it would run (a dry run), the way a user checks before a rerun;
deleting one mixture is also rerun for real.
"""

import re
import shutil
from pathlib import Path

import pytest

from conftest import TINY_CONFIG, logged_jobs, run_snakemake

pytestmark = pytest.mark.workflow

AUDIO_CACHE = {"extract_audio", "extract_frames", "demo_dataset", "manifest", "build_mixture"}


@pytest.fixture
def work(tiny_run, tmp_path):
    target = tmp_path / "work"
    shutil.copytree(tiny_run, target, symlinks=True)
    return target


def _overlay(work, text: str) -> Path:
    path = work / "overlay.yaml"
    path.write_text(text)
    return path


def _plan(work, *args, overlay: str | None = None, tmp_path=None) -> tuple[dict[str, int], str]:
    """Jobs per rule that Snakemake would run, and its dry-run output."""
    configs = [TINY_CONFIG]
    if overlay is not None:
        configs.append(_overlay(work, overlay))
    proc = run_snakemake(work, "--dry-run", *args, configs=configs)
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}, out
    table = re.search(r"Job stats:\njob\s+count\n[-\s]+\n(.*?)\ntotal\s+\d+", out, re.S)
    assert table, out[-3000:]
    return {line.split()[0]: int(line.split()[1]) for line in table.group(1).splitlines()}, out


def test_finished_run_has_nothing_to_do(work):
    assert _plan(work)[0] == {}


def test_an_nmf_change_reruns_bases_onward_but_not_extraction_or_vision(work):
    jobs, _ = _plan(work, overlay="nmf:\n  n_iter: 150\n")
    assert {"video_bases", "miml_data", "train_miml", "select_dictionary", "oracle_dictionary", "separate_nmf",
            "evaluate_mixture", "evaluation_summary"} <= set(jobs)
    assert not set(jobs) & (AUDIO_CACHE | {"train_vision", "vision_labels", "separate_irm"})


def _ran(work) -> set[str]:
    """The rules the last real run executed, from Snakemake's log of it."""
    return {rule for rule, _ in logged_jobs(work, last_only=True)}


def test_a_remade_manifest_and_new_bases_finish_in_one_invocation(work):
    # Fewer mixtures re-make the manifest (a checkpoint); a new chunk length changes the bases
    # and everything they feed. One invocation must do it all, up to the separations' scores
    # (the evaluation summary as the target: the probe and the report add nothing here).
    overlay = "nmf:\n  chunk_seconds: 2.5\nmixtures:\n  count: 2\n"
    target = "results/eval/summary.md"
    run_snakemake(work, target, configs=[TINY_CONFIG, _overlay(work, overlay)])
    ran = _ran(work)
    assert {"manifest", "video_bases", "miml_data", "train_miml", "separate_nmf", "evaluate_mixture",
            "evaluation_summary"} <= ran
    # The two mixtures kept are the plan's first two, unchanged: not rebuilt, not re-labelled.
    assert not ran & {"extract_audio", "extract_frames", "demo_dataset", "build_mixture", "train_vision",
                      "vision_labels", "separate_irm"}, ran
    assert _plan(work, target, overlay=overlay)[0] == {}
    assert [rule for rule, _ in logged_jobs(work, last_only=True)].count("evaluate_mixture") == 2


def test_a_limit_that_changes_nothing_reruns_only_the_manifest(work):
    run_snakemake(work, configs=[TINY_CONFIG, _overlay(work, "audio:\n  max_seconds: 600\n")])
    assert _ran(work) <= {"manifest", "dataset_overview", "all"}, _ran(work)
    assert _plan(work, overlay="audio:\n  max_seconds: 600\n")[0] == {}


def test_a_vision_change_does_not_rerun_bases(work):
    jobs, _ = _plan(work, overlay="vision:\n  max_frames: 3\n")
    assert {"vision_labels", "separate_nmf", "evaluate_mixture"} <= set(jobs)
    # max_frames is inference only: the classifier stays, and so do all audio caches
    assert not set(jobs) & (AUDIO_CACHE | {"train_vision", "video_bases", "miml_data", "train_miml",
                                           "select_dictionary", "oracle_dictionary"})
    jobs, _ = _plan(work, overlay="vision:\n  epochs: 2\n")
    assert "train_vision" in jobs and "video_bases" not in jobs and "train_miml" not in jobs


def test_miml_train_on_reruns_miml_onward_but_not_bases_or_the_oracle(work):
    jobs, out = _plan(work, overlay="miml:\n  train_on: solo\n")
    assert {"miml_data", "train_miml", "select_dictionary", "separate_nmf", "evaluate_mixture"} <= set(jobs)
    assert not set(jobs) & (AUDIO_CACHE | {"video_bases", "oracle_dictionary", "train_vision", "vision_labels",
                                           "separate_irm"})
    # The MIML network also names the mixtures' instruments (the default folder+audio+vision),
    # so the audio tags follow, and through them the other methods' mixture separations.
    assert jobs["audio_tags"] == len(list((work / "results" / "audio_tags").glob("*.json"))) > 0
    assert set(re.findall(r"output: results/separated/(\w+)/", out)) == {
        "miml_nmf", "miml_nmf_vision", "miml_nmf_truth", "oracle_nmf", "deep"}


def test_miml_solo_excluded_reruns_miml_and_the_oracle_and_adds_the_experiment_table(work):
    overlay = ("miml:\n  solo_excluded: [flute]\nevaluation:\n  methods: [mixture, irm, miml_nmf]\n"
               "  reference: miml_nmf\n")
    jobs, _ = _plan(work, overlay=overlay)
    assert {"miml_data", "train_miml", "select_dictionary", "multisource_table", "evaluation_summary"} <= set(jobs)
    # No oracle_nmf is evaluated, so its dictionary is not asked for; bases and vision stay.
    assert not set(jobs) & (AUDIO_CACHE | {"video_bases", "oracle_dictionary", "train_vision", "vision_labels"})


def test_a_stage_target_stops_after_its_stage(work):
    for folder in ("separated", "eval", "report"):
        shutil.rmtree(work / "results" / folder)
    assert _plan(work, "bases")[0] == {}
    assert _plan(work, "miml")[0] == {}
    jobs, _ = _plan(work, "separate")
    assert set(jobs) <= {"separate_nmf", "separate_irm", "separate_deep", "separate"} and jobs["separate_nmf"] > 0


def test_the_localize_target_makes_the_maps_and_their_scores_only(work):
    shutil.rmtree(work / "results" / "localization")
    jobs, _ = _plan(work, "localize")
    items = len(list((work / "results" / "vision").glob("*.json")))
    assert jobs == {"train_localization": 1, "localization_maps": items, "evaluate_localization": 1, "localize": 1}


def test_a_scoring_key_rescores_the_maps_and_a_map_key_remakes_them(work):
    jobs, _ = _plan(work, overlay="localization:\n  max_fraction: 0.4\n")
    assert set(jobs) == {"evaluate_localization", "all"}
    jobs, _ = _plan(work, overlay="localization:\n  center_sigma: 0.3\n")
    assert set(jobs) == {"localization_maps", "evaluate_localization", "showcase", "runtimes", "all"}
    assert "train_localization" not in jobs


def test_forcerun_select_dictionary_reruns_selection_onward_only(work):
    jobs, out = _plan(work, "--forcerun", "select_dictionary")
    assert jobs["select_dictionary"] == 1
    assert {"separate_nmf", "evaluate_mixture", "evaluation_summary"} <= set(jobs)
    assert not set(jobs) & (AUDIO_CACHE | {"video_bases", "miml_data", "train_miml", "oracle_dictionary",
                                           "train_vision", "vision_labels", "separate_irm"})
    # only the MIML dictionary's separations follow (with the default labels, vision's and the true ones)
    separated = re.findall(r"output: results/separated/(\w+)/", out)
    assert separated and set(separated) == {"miml_nmf", "miml_nmf_vision", "miml_nmf_truth"}


def test_deleting_one_mixture_reruns_only_that_mixture(work):
    plan = (work / "results" / "mixtures" / "plan.tsv").read_text().splitlines()[1:]
    victim = plan[1].split("\t")[0]
    before = {p: p.read_bytes() for p in (work / "results").rglob("*") if p.is_file()}
    stamps = {p: p.stat().st_mtime_ns for p in before}
    shutil.rmtree(work / "results" / "mixtures" / victim)
    jobs, out = _plan(work)
    mixes = set(re.findall(r"(mix[0-9]+)", "\n".join(l for l in out.splitlines() if "wildcards:" in l)))
    assert mixes == {victim}
    assert jobs["build_mixture"] == 1 and "video_bases" not in jobs and "train_miml" not in jobs
    run_snakemake(work)
    after = {p: p.read_bytes() for p in (work / "results").rglob("*") if p.is_file()}
    assert set(after) == set(before)
    changed = [p for p in before if before[p] != after[p] and not p.name.startswith("runtimes.")]
    assert not changed, f"rebuilt files differ: {changed[:5]}"
    # The aggregates over every mixture are remade: evaluation, the report, the probe's and
    # the localization maps' scores.
    scores = {"accuracy.tsv", "predictions.tsv", "confusion.png"}
    untouched = [p for p in before if victim not in str(p) and "eval" not in p.parts and "report" not in p.parts
                 and not (p.parent.name == "probe" and p.name in scores) and p.parent.name != "localization"]
    assert all(p.stat().st_mtime_ns == stamps[p] for p in untouched)


def test_evaluation_without_a_miml_method_needs_no_miml_network(work):
    (work / "results" / "miml" / "model.pt").unlink()
    # With miml_nmf evaluated, the MIML network names the tracks and feeds a probe: it is remade ...
    forced = ("--forcerun", "evaluate_mixture", "train_probe", "probe_mixture", "probe_report")
    jobs, _ = _plan(work, *forced)
    assert jobs.get("train_miml") == 1
    # ... without it, evaluation (the probe included) does without the network.
    jobs, _ = _plan(work, *forced, overlay="evaluation:\n  methods: [mixture, irm, oracle_nmf]\n")
    assert "train_miml" not in jobs and {"evaluate_mixture", "train_probe", "probe_mixture", "probe_report"} <= set(jobs)


def test_a_deep_training_change_reruns_only_the_deep_separator(work):
    jobs, out = _plan(work, overlay="deep:\n  epochs: 3\n")
    assert {"train_deep", "separate_deep", "evaluate_mixture", "evaluation_summary"} <= set(jobs)
    assert not set(jobs) & (AUDIO_CACHE | {"deep_data", "train_vision", "vision_labels", "video_bases",
                                           "train_miml", "separate_nmf", "separate_irm"})
    assert set(re.findall(r"output: results/separated/(\w+)/", out)) == {"deep"}
    # What the separator sees makes its clips: a change of features rebuilds them, no more.
    jobs, _ = _plan(work, overlay="deep:\n  visual: cnn\n")
    assert {"deep_data", "train_deep", "separate_deep"} <= set(jobs)
    assert not set(jobs) & (AUDIO_CACHE | {"train_vision", "vision_labels", "video_bases", "separate_nmf"})
