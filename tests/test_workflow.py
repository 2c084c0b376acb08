"""The real workflow, run through Snakemake's CLI on the tiny config."""

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from avsep.files import FORMAT_VERSION, read_frames, read_wav
from avsep.media import probe_media
from avsep.vision.labels import assign_audio_labels
from conftest import TINY_CONFIG, logged_jobs, run_snakemake

pytestmark = pytest.mark.workflow
TINY = yaml.safe_load(TINY_CONFIG.read_text())


@pytest.fixture(scope="module")
def manifest(tiny_run):
    return pd.read_csv(tiny_run / "results" / "manifest.tsv", sep="\t")


def test_demo_dataset_is_music_layout_of_h264_aac_videos(tiny_run):
    root = tiny_run / "results" / "demo" / "dataset"
    solos = sorted(root.glob("solo/*/*.mp4"))
    assert {p.parent.name for p in solos} == set(TINY["demo"]["instruments"])
    assert len(solos) == 3 * TINY["demo"]["videos_per_instrument"]
    duets = sorted(root.glob("duet/*/*.mp4"))
    assert len(duets) == TINY["demo"]["duets"]
    info = probe_media(duets[0])
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.duration == pytest.approx(TINY["demo"]["seconds"], abs=0.1)


def test_manifest_lists_every_video_with_probed_facts(manifest, tiny_run):
    demo = TINY["demo"]
    assert len(manifest) == 3 * demo["videos_per_instrument"] + demo["duets"]
    solo = manifest[manifest["kind"] == "solo"]
    for _, row in solo.iterrows():
        assert row["labels"] in row["path"].split("/")  # label = folder name
    duets = manifest[manifest["kind"] == "duet"]
    assert all(set(labels.split(",")) <= set(demo["instruments"]) for labels in duets["labels"])
    assert sorted(duets["split"]) == ["test", "train"]  # one scored, one for MIML
    assert (manifest["sample_rate"] == demo["sample_rate"]).all()
    assert (manifest["channels"] == 2).all()
    assert (manifest["width"] == demo["width"]).all() and (manifest["height"] == demo["height"]).all()
    assert (manifest["fps"] == demo["fps"]).all()
    np.testing.assert_allclose(manifest["duration"], demo["seconds"], atol=0.1)
    for _, group in solo.groupby("labels"):
        assert {"train", "test"} <= set(group["split"])


def test_train_and_test_videos_are_disjoint(manifest, tiny_run):
    train = set(manifest.loc[manifest["split"] != "test", "video_id"])
    test = set(manifest.loc[manifest["split"] == "test", "video_id"])
    assert train and test and not train & test
    plan = pd.read_csv(tiny_run / "results" / "mixtures" / "plan.tsv", sep="\t")
    used = set(plan["left_video"]) | set(plan["right_video"])
    assert used <= test and not used & train


def test_audio_is_mono_at_the_configured_rate_and_full_length(manifest, tiny_run):
    sr = TINY["audio"]["sample_rate"]
    for _, row in manifest.iterrows():
        audio, rate = read_wav(tiny_run / "results" / "audio" / f"{row['video_id']}.wav")
        assert rate == sr and audio.ndim == 1
        assert len(audio) / sr == pytest.approx(row["duration"], abs=0.05)
        assert np.abs(audio).max() > 0.01  # the instrument is heard


def test_frame_count_matches_duration_and_fps(manifest, tiny_run):
    fps, w, h = TINY["frames"]["fps"], TINY["frames"]["width"], TINY["frames"]["height"]
    for _, row in manifest.iterrows():
        frames, stamps, attrs = read_frames(tiny_run / "results" / "frames" / f"{row['video_id']}.h5")
        assert frames.shape[1:] == (h, w, 3)
        assert abs(len(frames) - row["duration"] * fps) <= 1
        np.testing.assert_allclose(stamps, np.arange(len(frames)) / fps)
        assert attrs["fps"] == fps


def _mixtures(tiny_run):
    dirs = sorted(p for p in (tiny_run / "results" / "mixtures").iterdir() if p.is_dir())
    assert len(dirs) == TINY["mixtures"]["count"]
    return [(d, json.loads((d / "mixture.json").read_text())) for d in dirs]


def test_mixture_is_the_sum_of_its_halved_stems(tiny_run):
    sr = TINY["audio"]["sample_rate"]
    for mix_dir, meta in _mixtures(tiny_run):
        mixture, rate = read_wav(mix_dir / "mixture.wav")
        assert rate == sr and len(mixture) == round(TINY["mixtures"]["seconds"] * sr)
        stems = [read_wav(mix_dir / s["stem"])[0] for s in meta["sources"]]
        assert len({s["instrument"] for s in meta["sources"]}) == 2
        np.testing.assert_allclose(mixture, stems[0] + stems[1], atol=1e-6)
        for src, stem in zip(meta["sources"], stems):
            full, _ = read_wav(tiny_run / "results" / "audio" / f"{src['video_id']}.wav")
            first = round(src["start"] * sr)
            np.testing.assert_allclose(stem, 0.5 * full[first : first + len(stem)], atol=1e-7)


def test_mixture_frames_put_each_source_on_its_side(tiny_run):
    fps = TINY["frames"]["fps"]
    for mix_dir, meta in _mixtures(tiny_run):
        frames, stamps, _ = read_frames(mix_dir / "frames.h5")
        width = frames.shape[2] // 2
        assert meta["frames"]["count"] == len(frames) == round(TINY["mixtures"]["seconds"] * fps)
        for src in meta["sources"]:
            own, own_stamps, _ = read_frames(tiny_run / "results" / "frames" / f"{src['video_id']}.h5")
            first = int(np.argmin(np.abs(own_stamps - src["start"])))
            half = frames[:, :, :width] if src["position"] == "left" else frames[:, :, width:]
            np.testing.assert_array_equal(half, own[first : first + len(frames)])
        assert [s["position"] for s in meta["sources"]] == ["left", "right"]
        assert meta["instruments"] == [s["instrument"] for s in meta["sources"]]


def test_every_job_can_be_built_on_its_own_as_a_cluster_job_is(tiny_run):
    # A cluster job (SLURM or any remote executor) runs a new Snakemake that builds only its
    # own job, from --target-jobs, with the other rules not allowed. A job whose input
    # functions or params need a rule outside it then fails on the node, after submission.
    jobs = sorted(set(logged_jobs(tiny_run)))
    rules = sorted({rule for rule, _ in jobs})
    assert {"manifest", "extract_audio", "video_bases", "separate_nmf", "evaluate_mixture"} <= set(rules)
    proc = run_snakemake(tiny_run, "--dry-run", "--target-jobs", *[f"{r}:{w}" for r, w in jobs],
                         "--allowed-rules", *rules, check=False)
    # Target jobs are forced, so the dry run lists them: only its success is the check.
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]


def test_reading_the_workflow_does_not_import_torch(tiny_run):
    # Snakemake reads the whole workflow at every start: each run and dry run, and twice per
    # cluster job. Importing torch costs about 2.5 s of CPU, so only the jobs that use it may.
    proc = run_snakemake(tiny_run, "--dry-run", env={"PYTHONPROFILEIMPORTTIME": "1"})
    imported = re.findall(r"^import time:.*\|\s*([\w.]+)\s*$", proc.stderr, re.M)
    assert "snakemake.workflow" in imported and "avsep.config" in imported  # the listing is whole
    assert "torch" not in imported, "the workflow definition imports torch"


def test_stage_target_stops_after_its_stage(tmp_path):
    run_snakemake(tmp_path, "extract")
    assert list((tmp_path / "results" / "audio").glob("*.wav"))
    assert list((tmp_path / "results" / "frames").glob("*.h5"))
    assert not list((tmp_path / "results" / "mixtures").glob("mix*"))  # planned, not built


def test_dataset_overview_counts_every_video(manifest, tiny_run):
    summary = pd.read_csv(tiny_run / "results" / "dataset" / "summary.tsv", sep="\t")
    assert summary["total_videos"].sum() == len(manifest)
    solo = summary[summary["kind"] == "solo"].set_index("labels")
    for label, group in manifest[manifest["kind"] == "solo"].groupby("labels"):
        assert solo.loc[label, "test_videos"] == (group["split"] == "test").sum()
        assert solo.loc[label, "total_minutes"] == pytest.approx(group["duration"].sum() / 60, abs=0.01)
    assert (tiny_run / "results" / "dataset" / "contact_sheet.png").stat().st_size > 1000


def test_bases_files_carry_the_configured_parameters(manifest, tiny_run):
    import h5py

    train = manifest[(manifest["kind"] == "solo") & (manifest["split"] == "train")]["video_id"]
    cfg = yaml.safe_load((TINY_CONFIG.parents[2] / "config" / "config.yaml").read_text())
    for vid in train:
        with h5py.File(tiny_run / "results" / "bases" / f"{vid}.h5", "r") as h5:
            attrs = dict(h5.attrs)
            C, F, M = h5["W"].shape
        assert attrs["stft_sample_rate"] == TINY["audio"]["sample_rate"]
        assert attrs["stft_n_fft"] == cfg["audio"]["n_fft"] and attrs["stft_hop_length"] == cfg["audio"]["hop_length"]
        assert attrs["nmf_n_components"] == M == cfg["nmf"]["n_components"]
        assert attrs["nmf_loss"] == cfg["nmf"]["loss"] and attrs["format_version"] == FORMAT_VERSION
        assert F == cfg["audio"]["n_fft"] // 2 + 1
        assert C == int(TINY["demo"]["seconds"] // cfg["nmf"]["chunk_seconds"])


def test_separation_writes_one_track_per_instrument_for_mixtures_and_duets(manifest, tiny_run):
    sep = tiny_run / "results" / "separated"
    for mix_dir, meta in _mixtures(tiny_run):
        mixture, sr = read_wav(mix_dir / "mixture.wav")
        vision = json.loads((tiny_run / "results" / "vision" / f"{meta['mix_id']}.json").read_text())
        tags = json.loads((tiny_run / "results" / "audio_tags" / f"{meta['mix_id']}.json").read_text())
        heard = assign_audio_labels(vision, tags)
        for method in ("irm", "oracle_nmf", "miml_nmf_vision"):
            info = json.loads((sep / method / meta["mix_id"] / "separation.json").read_text())
            assert info["positions"] == ["left", "right"]
            if method == "irm":
                assert info["instruments"] == meta["instruments"] and info["labels_from"] == "truth"
            elif method == "oracle_nmf":  # the default labels: the audio's pair, placed by vision
                assert info["instruments"] == heard["instruments"] and info["labels_from"] == "audio+vision"
                # each track tied to its player on screen
                assignment = json.loads((sep / method / meta["mix_id"] / "assignment.json").read_text())
                assert [(t["instrument"], t["position"], t["file"]) for t in assignment["tracks"]] == [
                    (i, p, f"{i}.wav") for i, p in zip(heard["instruments"], heard["positions"])]
            else:  # the instruments the vision stage saw
                assert info["instruments"] == vision["instruments"] and info["labels_from"] == "vision"
            tracks = [read_wav(sep / method / meta["mix_id"] / f"{i}.wav")[0] for i in info["instruments"]]
            assert all(len(t) == len(mixture) for t in tracks)
            np.testing.assert_allclose(tracks[0] + tracks[1], mixture, atol=1e-4)
    duets = manifest[manifest["kind"] == "duet"]
    assert not (sep / "oracle_nmf" / duets.loc[duets["split"] == "train", "video_id"].iloc[0]).exists()
    for _, duet in duets[duets["split"] == "test"].iterrows():  # the training duet is MIML's
        files = sorted(p.name for p in (sep / "oracle_nmf" / duet["video_id"]).glob("*.wav"))
        assert files == sorted(f"{i}.wav" for i in duet["labels"].split(","))  # the folder names them


def test_evaluation_ranks_irm_above_nmf_above_mixture(tiny_run):
    table = pd.read_csv(tiny_run / "results" / "eval" / "summary.tsv", sep="\t")
    assert len(table) == TINY["mixtures"]["count"] * 2 * len(TINY["evaluation"]["methods"])
    mean = table.groupby("method")["sdr"].mean()
    assert mean["irm"] > mean["oracle_nmf"] > mean["mixture"] + 3
    assert mean["miml_nmf"] > mean["mixture"] + 3
    # Where vision named both instruments on their sides, separating with its labels is
    # separating with the true ones. (Elsewhere either may score higher: a displaced source
    # takes the other track, which a weak true dictionary can lose to.)
    by = table.set_index(["mix_id", "instrument", "method"])["sdr"]
    vision_rows = table[table["method"] == "miml_nmf"]
    placed = vision_rows.groupby("mix_id")["location_correct"].min() == 1
    assert placed.any(), "no mixture had both instruments on their sides: nothing to compare"
    for row in vision_rows[vision_rows["mix_id"].map(placed)].itertuples():
        assert by[(row.mix_id, row.instrument, "miml_nmf")] == pytest.approx(
            by[(row.mix_id, row.instrument, "miml_nmf_truth")], abs=1e-6)
    truth = json.loads((tiny_run / "results" / "separated" / "miml_nmf_truth" / "mix000" / "separation.json").read_text())
    assert truth["labels_from"] == "truth"
    text = (tiny_run / "results" / "eval" / "summary.md").read_text()
    assert "oracle_nmf" in text and "miml_nmf" in text and "SDRi" in text and "audio_acc" in text
    labels = set(TINY["demo"]["instruments"])
    for name in ("audio", "miml_audio"):  # the independent probe and the MIML network
        assert set(table[f"{name}_label"]) <= labels  # every track got a label, even shorter than a chunk
    probe = pd.read_csv(tiny_run / "results" / "probe" / "accuracy.tsv", sep="\t")
    assert set(probe["input"]) == {"solo", *TINY["evaluation"]["methods"]}
    assert probe["acc"].between(0, 1).all() and (probe["acc_lo"] <= probe["acc"]).all()
    # Each source was scored against one track of its method, and each track served one source.
    nmf_rows = table[table["method"] == "oracle_nmf"]
    assert set(nmf_rows["matched_by"]) <= {"label", "position"}
    assert not nmf_rows.duplicated(["mix_id", "matched_track"]).any()
    methods = pd.read_csv(tiny_run / "results" / "eval" / "methods.tsv", sep="\t").set_index("method")
    assert (methods["sdr_lo"] <= methods["sdr_mean"]).all() and (methods["sdr_mean"] <= methods["sdr_hi"]).all()
    assert methods.loc["oracle_nmf", "sdr_diff"] == 0 and methods.loc["irm", "sdr_diff_lo"] > 0
    # visual and location accuracy exist for the vision-driven methods only
    assert table.loc[table["method"].isin(["irm", "mixture", "miml_nmf_truth"]),
                     ["visual_correct", "location_correct"]].isna().all().all()
    nmf = table[table["method"] == "oracle_nmf"]
    assert nmf["visual_correct"].between(0, 1).all() and nmf["location_correct"].between(0, 1).all()
    assert "visual_acc" in text and "location_acc" in text
    assert (tiny_run / "results" / "eval" / "sdr_boxplot.png").stat().st_size > 5000


def test_miml_model_metrics_and_dictionary_bookkeeping(manifest, tiny_run):
    import h5py

    from avsep.dictionary import read_dictionaries
    from avsep.miml.model import load_model

    model, meta = load_model(tiny_run / "results" / "miml" / "model.pt")
    assert meta["label_names"] == sorted(TINY["demo"]["instruments"])
    metrics = pd.read_csv(tiny_run / "results" / "miml" / "metrics.tsv", sep="\t")
    assert list(metrics["epoch"]) == list(range(1, TINY["miml"]["epochs"] + 1))
    # Six bags and dropout make single epochs noisy: compare the first and last five.
    assert metrics["loss"].tail(5).mean() < metrics["loss"].head(5).mean()
    assert metrics["train_acc"].tail(5).mean() > metrics["train_acc"].head(5).mean()
    assert not (tiny_run / "results" / "miml" / "resume" / "checkpoint.pt").exists()
    dictionaries, attrs = read_dictionaries(tiny_run / "results" / "dictionary" / "miml.h5")
    label = dict(zip(manifest["video_id"], manifest["labels"]))
    split = dict(zip(manifest["video_id"], manifest["split"]))
    assert attrs["kind"] == "miml" and set(dictionaries) == set(TINY["demo"]["instruments"])
    for instrument, d in dictionaries.items():  # the bases of solos of it, or of duets with it
        assert all(instrument in label[v].split(",") and split[v] == "train" for v in d.video_id)
    # The training duet's bags carry both its instruments, and its bases are measured for purity.
    duet = manifest[(manifest["kind"] == "duet") & (manifest["split"] == "train")].iloc[0]
    weak = pd.read_csv(tiny_run / "results" / "miml" / "weak_labels.tsv", sep="\t").set_index("video_id")
    assert weak.loc[duet["video_id"], "weak"] == ",".join(sorted(duet["labels"].split(",")))
    with h5py.File(tiny_run / "results" / "miml" / "train.h5") as h5:
        videos = h5["video_id"][()].astype(str)
        assert (h5["targets"][()][videos == duet["video_id"]].sum(axis=1) == 2).all() and (videos == duet["video_id"]).any()
    # Every selected basis has a known source (solos by folder, the duet by its stems).
    purity = pd.read_csv(tiny_run / "results" / "miml" / "purity.tsv", sep="\t").set_index("instrument")
    assert set(purity.index) == set(TINY["demo"]["instruments"]) and (purity["known"] == purity["selected"]).all()
    assert ((purity["purity"] >= 0) & (purity["purity"] <= 1)).all()
    assert (tiny_run / "results" / "miml" / "purity.png").stat().st_size > 0


def test_vision_labels_and_classifier(tiny_run):
    from avsep.vision.classifier import classify_images, load_classifier

    names = sorted(TINY["demo"]["instruments"])
    model, meta = load_classifier(tiny_run / "results" / "vision" / "model" / "classifier.pt")
    assert meta["label_names"] == names and meta["backbone"] == "efficientnet_lite0"
    for mix_dir, mix in _mixtures(tiny_run):
        vision = json.loads((tiny_run / "results" / "vision" / f"{mix['mix_id']}.json").read_text())
        assert set(vision["instruments"]) <= set(names) and len(set(vision["instruments"])) == 2
        assert vision["positions"] == ["left", "right"] and all(0 <= s <= 1 for s in vision["scores"])
        assert vision["method"] == "halves" and set(vision["present"]) <= set(vision["instruments"])
        frames, _, _ = read_frames(mix_dir / "frames.h5")
        assert len(vision["frames"]) == min(len(frames), yaml.safe_load(
            (TINY_CONFIG.parents[2] / "config" / "config.yaml").read_text())["vision"]["max_frames"])
        # the evidence is reproducible from the saved classifier
        first = vision["frames"][0]
        half = frames[first["index"]][:, : frames.shape[2] // 2]
        probs = classify_images(model, [half], input_size=meta["input_size"])
        if not first["split"]:
            assert names[int(probs.argmax())] == first["left"]
            assert float(probs.max()) == pytest.approx(first["left_score"], abs=1e-3)
    assert (tiny_run / "results" / "vision" / "model" / "confusion.png").stat().st_size > 1000


def _solo_frames(tiny_run, split, *, skip_training_frames=False):
    """Frames and label indices of the solo videos of ``split``; with
    ``skip_training_frames``, only the frames the classifier did not train on
    (vision.frames_per_video picks the others)."""
    from avsep.vision.training import sample_indices

    table = pd.read_csv(tiny_run / "results" / "manifest.tsv", sep="\t")
    names = sorted(TINY["demo"]["instruments"])
    per_video = yaml.safe_load((TINY_CONFIG.parents[2] / "config" / "config.yaml").read_text())["vision"]["frames_per_video"]
    images, labels = [], []
    for row in table[(table["kind"] == "solo") & (table["split"] == split)].itertuples():
        frames, _, _ = read_frames(tiny_run / "results" / "frames" / f"{row.video_id}.h5")
        keep = sorted(set(range(len(frames))) - set(sample_indices(len(frames), per_video).tolist())
                      if skip_training_frames else range(len(frames)))
        images += list(frames[keep])
        labels += [names.index(row.labels)] * len(keep)
    return images, np.array(labels)


def _accuracy(model, images, labels, input_size):
    from avsep.vision.classifier import classify_images

    return float((classify_images(model, images, input_size=input_size).argmax(1) == labels).mean())


def test_vision_names_unseen_frames_where_an_untrained_head_cannot(tiny_run):
    import torch

    from avsep.vision.backbones import FeatureClassifier
    from avsep.vision.classifier import load_classifier
    from avsep.vision.regions import RegionClassifier

    model, meta = load_classifier(tiny_run / "results" / "vision" / "model" / "classifier.pt")
    # The tiny demo has box annotations: vision.regions auto trains the region classifier.
    assert meta["architecture"] == "regions"
    metrics = pd.read_csv(tiny_run / "results" / "vision" / "model" / "metrics.tsv", sep="\t")
    # Validation (the held-out-look val videos) is finite, and selects its best row.
    assert np.isfinite(metrics["val_acc"]).all() and np.isfinite(metrics["val_loss"]).all()
    assert metrics["selected"].sum() == 1
    assert metrics.loc[metrics["selected"], "val_acc"].iloc[0] == metrics["val_acc"].max()
    images, labels = _solo_frames(tiny_run, "train", skip_training_frames=True)
    assert len(images) and len(set(labels)) == len(TINY["demo"]["instruments"])
    trained = _accuracy(model, images, labels, meta["input_size"])
    assert trained >= 0.9, f"frames the classifier did not train on, named right: {trained:.2f}"
    # The same pretrained backbone with untrained heads: the features alone do not get there.
    for seed in range(3):
        torch.manual_seed(seed)
        if meta["architecture"] == "regions":
            untrained = RegionClassifier(meta["backbone"], len(meta["label_names"])).eval()
        else:
            untrained = FeatureClassifier(meta["backbone"], len(meta["label_names"]), head=meta["head"]).eval()
        chance = _accuracy(untrained, images, labels, meta["input_size"])
        assert chance < 0.9, f"an untrained head (seed {seed}) names {chance:.2f} of the frames"


@pytest.mark.xfail(strict=True, reason="known gap (issue 12): with two training looks per instrument in "
                   "112 px frames, the tiny run's region head does no better than chance (0.33) on its held-out-look test "
                   "frames; the demo's eight instruments, with three training looks at 448 px, "
                   "are where this is measured (results/vision/model/metrics.tsv)")
def test_vision_names_held_out_looks(tiny_run):
    from avsep.vision.classifier import load_classifier

    model, meta = load_classifier(tiny_run / "results" / "vision" / "model" / "classifier.pt")
    images, labels = _solo_frames(tiny_run, "test")
    assert _accuracy(model, images, labels, meta["input_size"]) >= 0.8


def test_vision_scores_mixtures_and_duets_both_ways(tiny_run):
    summary = pd.read_csv(tiny_run / "results" / "eval" / "vision_summary.tsv", sep="\t")
    items = pd.read_csv(tiny_run / "results" / "eval" / "vision.tsv", sep="\t")
    assert set(zip(summary["kind"], summary["labels_from"])) == {
        ("mixture", "vision"), ("mixture", "audio+vision"), ("duet", "vision"), ("duet", "folder+vision"),
        ("duet", "audio+vision")}
    n_mix = len(pd.read_csv(tiny_run / "results" / "mixtures" / "plan.tsv", sep="\t"))
    assert summary.set_index(["kind", "labels_from"]).loc[("mixture", "vision"), "items"] == n_mix
    duets = items[items["kind"] == "duet"]
    # With the folder's labels, the instruments are right by construction; the sides are
    # vision's, scored against the generator's boxes.
    assert (duets.loc[duets["labels_from"] == "folder+vision", "visual_correct"] == 1).all()
    assert duets["location_acc"].notna().all()
    for row in summary.itertuples():
        assert row.visual_acc_lo <= row.visual_acc <= row.visual_acc_hi
    assert (tiny_run / "results" / "eval" / "vision_confusion.png").stat().st_size > 1000


def test_by_default_audio_names_a_mixtures_instruments_and_vision_places_them(tiny_run):
    """separation.labels: folder+audio+vision (the default): a test mixture's two instruments
    are the two the MIML network hears best, on the sides vision's probabilities fit; a duet
    takes its folder's; miml_nmf_vision keeps vision's own labels."""
    plan = pd.read_csv(tiny_run / "results" / "mixtures" / "plan.tsv", sep="\t")
    names = sorted(TINY["demo"]["instruments"])
    for mix in plan["mix_id"]:
        tags = json.loads((tiny_run / "results" / "audio_tags" / f"{mix}.json").read_text())
        assert tags["item"] == mix and not tags["silent"] and tags["chunks"] >= 1
        assert sorted(tags["ranked"]) == names and sorted(tags["scores"]) == names
        assert all(0.0 <= v <= 1.0 for v in tags["scores"].values())
        vision = json.loads((tiny_run / "results" / "vision" / f"{mix}.json").read_text())
        info = json.loads((tiny_run / "results" / "separated" / "miml_nmf" / mix / "separation.json").read_text())
        assert info["labels_from"] == "audio+vision" and sorted(info["instruments"]) == sorted(tags["ranked"][:2])
        left, right = info["instruments"]
        probs = vision["side_probs"]
        assert probs["left"][left] + probs["right"][right] >= probs["left"][right] + probs["right"][left]
        assert info["uncertain"] == (set(tags["ranked"][:2]) != set(vision["instruments"]))
        alone = json.loads((tiny_run / "results" / "separated" / "miml_nmf_vision" / mix / "separation.json").read_text())
        assert alone["labels_from"] == "vision" and alone["instruments"] == vision["instruments"]
        # Evaluation names the mixture itself with the same MIML label.
        scores = pd.read_csv(tiny_run / "results" / "eval" / "mixtures" / f"{mix}.tsv", sep="\t")
        assert set(scores.loc[scores["method"] == "mixture", "miml_audio_label"]) == {tags["ranked"][0]}
    table = pd.read_csv(tiny_run / "results" / "manifest.tsv", sep="\t")
    for duet in table.loc[(table["kind"] == "duet") & (table["split"] == "test"), "video_id"]:
        info = json.loads((tiny_run / "results" / "separated" / "miml_nmf" / duet / "separation.json").read_text())
        assert info["labels_from"] == "folder+vision"
    # Scored beside vision's own: the audio's pairs against the mixtures' true instruments.
    items = pd.read_csv(tiny_run / "results" / "eval" / "vision.tsv", sep="\t")
    heard = items[(items["kind"] == "mixture") & (items["labels_from"] == "audio+vision")]
    assert len(heard) == len(plan) and heard["visual_correct"].mean() >= 2 / 3


def test_folder_labels_placed_by_vision_separate_a_duet_into_its_folder_instruments(tiny_run, tmp_path):
    work = _copy_run(tiny_run, tmp_path)
    table = pd.read_csv(work / "results" / "manifest.tsv", sep="\t")
    duet = table[table["kind"] == "duet"].iloc[0]
    cfg = tmp_path / "folder.yaml"
    cfg.write_text("separation:\n  labels: folder+vision\n")
    target = f"results/separated/miml_nmf/{duet['video_id']}"
    run_snakemake(work, target, configs=(TINY_CONFIG, cfg))
    info = json.loads((work / target / "separation.json").read_text())
    assert info["labels_from"] == "folder+vision" and sorted(info["instruments"]) == sorted(duet["labels"].split(","))
    assert info["positions"] == ["left", "right"] and not info["uncertain"]
    vision = json.loads((work / "results" / "vision" / f"{duet['video_id']}.json").read_text())
    left, right = info["instruments"]
    probs = vision["side_probs"]
    assert probs["left"][left] + probs["right"][right] >= probs["left"][right] + probs["right"][left]
    for inst in info["instruments"]:
        assert (work / target / f"{inst}.wav").stat().st_size > 1000
    # A test mixture has no folder labels: it keeps vision's.
    run_snakemake(work, "results/separated/miml_nmf/mix000", configs=(TINY_CONFIG, cfg))
    mix = json.loads((work / "results" / "separated" / "miml_nmf" / "mix000" / "separation.json").read_text())
    assert mix["labels_from"] == "vision"


def test_a_vision_failure_is_scored_as_the_mixture_and_counted(tiny_run, tmp_path):
    """Vision names one instrument on both sides and gives no probabilities to fall back on:
    the run used to stop at separation; now the mixture is scored, and counted as failed."""
    work = _copy_run(tiny_run, tmp_path)
    record_path = work / "results" / "vision" / "mix000.json"
    record = json.loads(record_path.read_text())
    record.update(instruments=[record["instruments"][0]] * 2, uncertain=False)
    record.pop("side_probs", None)
    record_path.write_text(json.dumps(record))
    cfg = tmp_path / "vision.yaml"
    cfg.write_text("separation:\n  labels: vision\n")  # the audio would name the pair
    run_snakemake(work, "results/eval/summary.md", configs=(TINY_CONFIG, cfg))
    vision_methods = [m for m in TINY["evaluation"]["methods"] if m in ("oracle_nmf", "miml_nmf")]
    for method in vision_methods:
        info = json.loads((work / "results" / "separated" / method / "mix000" / "separation.json").read_text())
        assert "two different instruments" in info["failed"] and info["instruments"] == []
    table = pd.read_csv(work / "results" / "eval" / "summary.tsv", sep="\t", keep_default_na=False, na_values=[""])
    failed = table[(table["mix_id"] == "mix000") & table["method"].isin(vision_methods)]
    assert len(failed) == 2 * len(vision_methods) and (failed["matched_by"] == "none").all()
    np.testing.assert_allclose(failed["sdri"], 0.0, atol=1e-6)  # the mixture is the estimate
    assert failed["failed"].str.contains("two different instruments").all()
    others = table[(table["mix_id"] != "mix000") & table["method"].isin(vision_methods)]
    assert (others["failed"].fillna("") == "").all()
    methods = pd.read_csv(work / "results" / "eval" / "methods.tsv", sep="\t").set_index("method")
    assert (methods.loc[vision_methods, "failed"] == 1).all() and methods.loc["irm", "failed"] == 0
    assert "failed" in (work / "results" / "eval" / "summary.md").read_text()


def test_true_labels_with_nmf_separate_the_true_instruments(tiny_run, tmp_path):
    work = _copy_run(tiny_run, tmp_path)
    cfg = tmp_path / "truth.yaml"
    cfg.write_text("separation:\n  labels: truth\n")
    run_snakemake(work, "results/eval/mixtures/mix000.tsv", configs=(TINY_CONFIG, cfg))
    meta = json.loads((work / "results" / "mixtures" / "mix000" / "mixture.json").read_text())
    info = json.loads((work / "results" / "separated" / "oracle_nmf" / "mix000" / "separation.json").read_text())
    assert info["labels_from"] == "truth" and info["instruments"] == meta["instruments"]
    assert info["positions"] == [s["position"] for s in meta["sources"]]
    scores = pd.read_csv(work / "results" / "eval" / "mixtures" / "mix000.tsv", sep="\t")
    nmf = scores[scores["method"] == "oracle_nmf"]
    assert (nmf["matched_by"] == "label").all() and nmf["visual_correct"].isna().all()
    assert (nmf["sdri"] > 0).all()  # each source's own dictionary beats doing nothing


def test_uncertain_vision_is_flagged_and_still_separates_two_instruments(tiny_run, tmp_path):
    work = _copy_run(tiny_run, tmp_path)
    cfg = tmp_path / "abstain.yaml"
    # No margin reaches 1: every record abstains. Vision's labels alone, not the audio's.
    cfg.write_text("vision:\n  abstain_margin: 1.0\nseparation:\n  labels: vision\n")
    target = "results/separated/miml_nmf/mix000"
    run_snakemake(work, target, configs=(TINY_CONFIG, cfg))
    vision = json.loads((work / "results" / "vision" / "mix000.json").read_text())
    assert vision["uncertain"] and "abstain_margin" in vision["uncertain_reason"]
    pooled = {k: vision["side_probs"]["left"][k] + vision["side_probs"]["right"][k] for k in vision["side_probs"]["left"]}
    assert sorted(vision["instruments"]) == sorted(sorted(pooled, key=pooled.get)[-2:])
    info = json.loads((work / target / "separation.json").read_text())
    assert info["uncertain"] and len(set(info["instruments"])) == 2
    assert "vision is uncertain" in (work / "logs" / "separate_nmf" / "miml" / "mix000.log").read_text()
    # The vision model itself is not retrained for an inference key.
    assert ("train_vision", "") not in logged_jobs(work, last_only=True)


def _copy_run(tiny_run, tmp_path):
    """A copy of the finished tiny run (outputs, times and Snakemake's records) to change."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(tiny_run, work, symlinks=True)
    return work


def _mtimes(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_detector_method_trains_on_the_generator_boxes_and_locates_players(tiny_run, tmp_path):
    from avsep.vision.detector import detect, load_detector

    work = _copy_run(tiny_run, tmp_path)
    bases = _mtimes(work / "results" / "bases")
    cfg = tmp_path / "detector.yaml"
    cfg.write_text("vision:\n  method: detector\n  detector:\n    input_size: 64\n    epochs: 2\n"
                   "localization:\n  methods: [whole, center]\n")
    run_snakemake(work, "vision", configs=(TINY_CONFIG, cfg))
    assert _mtimes(work / "results" / "bases") == bases  # a vision change leaves the audio caches alone
    names = sorted(TINY["demo"]["instruments"])
    path = work / "results" / "vision" / "model" / "detector.pt"
    model = load_detector(path, len(names), label_names=names, score_threshold=0.05)
    metrics = pd.read_csv(work / "results" / "vision" / "model" / "metrics.tsv", sep="\t")
    assert list(metrics["epoch"]) == [1, 2] and {"val_acc", "val_iou"} <= set(metrics.columns)
    for mix_dir, mix in _mixtures(work):
        record = json.loads((work / "results" / "vision" / f"{mix['mix_id']}.json").read_text())
        assert record["method"] == "detector" and set(record["instruments"]) <= set(names)
        assert len(record["boxes"]) == len(record["instruments"])
        for box in record["boxes"]:  # inside the side-by-side frame
            assert 0 <= box[0] < box[2] <= 2 * TINY["frames"]["width"] and 0 <= box[1] < box[3] <= TINY["frames"]["height"]
        # the per-frame evidence is what the saved detector finds again
        frames, _, _ = read_frames(mix_dir / "frames.h5")
        first = record["frames"][0]
        rows = detect(model, frames[[first["index"]]])
        assert len(rows) == len(first["detections"])
        if len(rows):
            assert rows["score"].max() == pytest.approx(first["detections"][0]["score"], abs=1e-3)
    # The detector's labels go through separation and evaluation like the classifier's.
    run_snakemake(work, "results/eval/mixtures/mix000.tsv", configs=(TINY_CONFIG, cfg))
    record = json.loads((work / "results" / "vision" / "mix000.json").read_text())
    info = json.loads((work / "results" / "separated" / "miml_nmf_vision" / "mix000" / "separation.json").read_text())
    assert info["labels_from"] == "vision"
    assert info.get("failed") or info["instruments"] == record["instruments"]
    scores = pd.read_csv(work / "results" / "eval" / "mixtures" / "mix000.tsv", sep="\t", keep_default_na=False,
                         na_values=[""])
    nmf = scores[scores["method"] == "oracle_nmf"]
    assert len(nmf) == 2 and set(nmf["matched_by"]) <= {"label", "position", "none"}
    assert nmf["visual_correct"].notna().all() and np.isfinite(nmf["sdr"]).all()


def test_miml_can_learn_from_what_vision_sees(tiny_run, tmp_path):
    import h5py

    work = _copy_run(tiny_run, tmp_path)
    cfg = tmp_path / "vision_labels.yaml"
    cfg.write_text("miml:\n  labels: vision\n  vision_folds: 2\n")
    run_snakemake(work, "results/miml/train.h5", configs=(TINY_CONFIG, cfg))
    table = pd.read_csv(work / "results" / "manifest.tsv", sep="\t")
    train = table[table["split"] == "train"]
    solos = train.loc[train["kind"] == "solo", "video_id"]
    names = sorted(TINY["demo"]["instruments"])
    # The training solos are labelled by the fold model that did not train on them; the
    # training duet, which vision never trains on, by the vision stage's own record.
    crossfit = json.loads((work / "results" / "vision" / "crossfit.json").read_text())
    assert crossfit["folds"] == 2 and set(crossfit["videos"]) == set(solos)
    label = dict(zip(table["video_id"], table["labels"]))
    for fold in range(2):  # each fold holds out one video of every instrument (2 train solos each)
        held = [v for v, r in crossfit["videos"].items() if r["fold"] == fold]
        assert sorted(label[v] for v in held) == names
    present = {v: r["present"] for v, r in crossfit["videos"].items()}
    for video_id in train.loc[train["kind"] == "duet", "video_id"]:
        present[video_id] = json.loads((work / "results" / "vision" / f"{video_id}.json").read_text())["present"]
        assert not (work / "results" / "vision" / f"{solos.iloc[0]}.json").exists()
    with h5py.File(work / "results" / "miml" / "train.h5") as h5:
        assert h5.attrs["labels"] == "vision"
        videos = [v.decode() if isinstance(v, bytes) else v for v in h5["video_id"][()]]
        targets = h5["targets"][()]
    assert set(videos) == set(train["video_id"])
    for video_id in train["video_id"]:
        rows = targets[[i for i, v in enumerate(videos) if v == video_id]]
        assert len(rows) and (rows == [float(n in present[video_id]) for n in names]).all()
    weak = pd.read_csv(work / "results" / "miml" / "weak_labels.tsv", sep="\t").set_index("video_id")
    assert set(weak.loc[list(solos), "source"]) == {"crossfit"}
