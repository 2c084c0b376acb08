"""Which files each job reads (avsep.inputs), on a small manifest and plan built here: the
decisions rules/common.smk used to make inline, now tested without Snakemake."""

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from avsep import inputs
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(cfg, str(REPO / "config" / "schema.yaml"))  # fills in the schema's defaults
    return cfg


MANIFEST = pd.DataFrame(
    [
        # video_id, kind, labels, split: deliberately not in split order
        ("cello-01", "solo", "cello", "val"),
        ("cello-00", "solo", "cello", "train"),
        ("flute-00", "solo", "flute", "train"),
        ("flute-01", "solo", "flute", "test"),
        ("cello-02", "solo", "cello", "test"),
        ("duet-00", "duet", "cello,flute", "test"),
    ],
    columns=["video_id", "kind", "labels", "split"],
).assign(path=lambda t: "data/" + t["video_id"] + ".mp4")
PLAN = pd.DataFrame(
    [("mix000", "cello-02", "flute-01", "cello", "flute"), ("mix001", "flute-01", "cello-02", "flute", "cello")],
    columns=["mix_id", "left_video", "right_video", "left_instrument", "right_instrument"],
)


def stage(config, **changes):
    cfg = copy.deepcopy(config)
    for key, value in changes.items():
        block, name = key.split("__")
        cfg[block][name] = value
    return inputs.StageInputs(cfg, MANIFEST, PLAN)


def test_solo_videos_by_split_keep_split_order_and_facts_sort_by_id(config):
    s = stage(config)
    assert s.solos("train") == ["cello-00", "flute-00"]
    assert s.solos("train", "val") == ["cello-01", "cello-00", "flute-00"]  # manifest order
    assert s.solos() == ["cello-01", "cello-00", "flute-00", "flute-01", "cello-02"]  # never the duet
    assert s.bases("train", "val") == ["results/bases/cello-00.h5", "results/bases/flute-00.h5",
                                       "results/bases/cello-01.h5"]  # train first, then val
    assert list(s.solo_facts("train", "val")) == ["cello-00", "cello-01", "flute-00"]
    assert s.solo_facts("train")["flute-00"] == ["flute", "train"]


def test_mixture_sources_and_unknown_ids(config):
    s = stage(config)
    assert s.mixture_sources("mix001") == {
        "left_audio": "results/audio/flute-01.wav", "right_audio": "results/audio/cello-02.wav",
        "left_frames": "results/frames/flute-01.h5", "right_frames": "results/frames/cello-02.h5"}
    with pytest.raises(ValueError, match="mix009.*not in the mixture plan"):
        s.mixture_sources("mix009")
    with pytest.raises(ValueError, match="nope.*not in the manifest"):
        s.video_path("nope")
    assert s.video_path("duet-00") == "data/duet-00.mp4"


def test_visible_instruments_come_from_the_plan_or_the_folder(config):
    s = stage(config)
    assert s.visible_instruments("mix001") == {"instruments": ["flute", "cello"], "positions": ["left", "right"]}
    assert s.visible_instruments("duet-00") == {"instruments": ["cello", "flute"], "positions": ["unknown", "unknown"]}
    # A test mixture's protocol gives no labels; a duet's folder names its two.
    assert s.folder_labels("mix000") == []
    assert s.folder_labels("duet-00") == ["cello", "flute"]


def test_separation_reads_vision_labels_unless_truth(config):
    config["separation"]["labels"] = "vision"
    s = stage(config)
    assert s.separation_inputs("mix000", "", "results/manifest.tsv") == {
        "audio": "results/mixtures/mix000", "manifest": "results/manifest.tsv",
        "vision": "results/vision/mix000.json"}
    truth = s.separation_inputs("duet-00", "_truth", "m.tsv")
    assert truth == {"audio": "results/audio/duet-00.wav", "manifest": "m.tsv"}
    assert inputs.separation_settings(config, "_truth")["labels"] == "truth"
    assert inputs.separation_settings(config, "")["labels"] == config["separation"]["labels"]


def test_audio_vision_labels_read_the_audio_tags_as_well_as_vision(config):
    config["separation"]["labels"] = "vision"
    assert stage(config).all_audio_tags() == []
    config["separation"]["labels"] = "audio+vision"
    s = stage(config)
    assert s.separation_inputs("mix000", "", "m.tsv") == {
        "audio": "results/mixtures/mix000", "manifest": "m.tsv", "vision": "results/vision/mix000.json",
        "tags": "results/audio_tags/mix000.json"}
    assert "tags" not in s.separation_inputs("mix000", "_truth", "m.tsv")
    assert s.deep_separation_inputs("duet-00", "m.tsv")["tags"] == "results/audio_tags/duet-00.json"
    assert s.audio_tags_inputs("duet-00") == {"audio": "results/audio/duet-00.wav", "model": inputs.MIML_MODEL}
    assert s.all_audio_tags() == [f"results/audio_tags/{i}.json" for i in [*s.mixtures(), *s.test_duets()]]
    # Evaluation takes the mixture's MIML label from its tags rather than factoring it again.
    assert s.evaluation_models("mix000")["tags"] == "results/audio_tags/mix000.json"
    # folder+audio+vision: a duet's folder names its two instruments, so only mixtures are heard.
    config["separation"]["labels"] = "folder+audio+vision"
    s = stage(config)
    assert s.separation_inputs("mix000", "", "m.tsv")["tags"] == "results/audio_tags/mix000.json"
    assert "tags" not in s.separation_inputs("duet-00", "", "m.tsv")
    assert "tags" not in s.deep_separation_inputs("duet-00", "m.tsv")
    assert len(s.all_audio_tags()) == len(s.mixtures()) + len(s.test_duets())


def test_duets_are_separated_by_methods_needing_neither_stems_nor_labels(config):
    config["evaluation"]["methods"] = ["mixture", "irm", "oracle_nmf", "miml_nmf", "miml_nmf_truth"]
    s = inputs.StageInputs(config, MANIFEST, PLAN)
    assert s.all_duet_separations() == ["results/separated/oracle_nmf/duet-00", "results/separated/miml_nmf/duet-00"]
    assert len(s.all_mixture_separations()) == 4 * 2
    assert s.evaluation_models() == {"probe": inputs.PROBE_MODEL, "miml": inputs.MIML_MODEL}


def test_without_a_miml_method_nothing_needs_the_miml_network(config):
    config["evaluation"]["methods"] = ["mixture", "irm", "oracle_nmf"]
    config["evaluation"]["reference"] = "oracle_nmf"
    config["probe"]["features"] = ["logmel", "miml"]
    s = inputs.StageInputs(config, MANIFEST, PLAN)
    assert inputs.probe_features(config) == ["logmel"]
    assert "miml" not in s.evaluation_models()
    assert "miml" not in s.probe_report_inputs("m.tsv")
    assert "miml" not in s.probe_mixture_inputs(PLAN["mix_id"].iloc[0])
    assert all("miml" not in f for f in inputs.probe_files(config))


def test_duet_stems_and_annotations_are_found_in_the_dataset(config, tmp_path):
    config["dataset"]["root"] = str(tmp_path)
    (tmp_path / "annotations").mkdir()
    s = inputs.StageInputs(config, MANIFEST, PLAN)
    assert s.duets_with_stems() == [] and s.duet_annotations() == []
    (tmp_path / "stems" / "duet-00").mkdir(parents=True)
    (tmp_path / "annotations" / "duet-00.tsv").write_text("time\n")
    assert s.all_duet_evaluations() == ["results/eval/duets/duet-00.tsv"]
    ref = s.duet_reference_inputs("duet-00", "m.tsv")
    assert ref["stems"] == [str(tmp_path / "stems" / "duet-00" / f"{i}.wav") for i in ("cello", "flute")]
    assert ref["annotations"] == f"{tmp_path}/annotations/duet-00.tsv"
    assert s.duet_annotations() == [f"{tmp_path}/annotations/duet-00.tsv"]


def test_vision_trains_regions_only_with_every_box(config, tmp_path):
    config["dataset"]["root"] = str(tmp_path)
    config["vision"].update(method="halves", regions="auto")
    s = inputs.StageInputs(config, MANIFEST, PLAN)
    assert s.vision_regions(region_head_possible=True) is False  # no annotations yet
    (tmp_path / "annotations").mkdir()
    for v in s.solos("train", "val"):
        (tmp_path / "annotations" / f"{v}.tsv").write_text("time\n")
    assert s.vision_regions(region_head_possible=True) is True
    assert s.vision_regions(region_head_possible=False) is False
    assert len(s.vision_annotations(regions=True)) == 3
    assert s.vision_annotations(regions=False) == []
    (tmp_path / "annotations" / "cello-01.tsv").unlink()
    config["vision"]["regions"] = "boxes"
    with pytest.raises(ValueError, match="1 of 3 are missing.*cello-01"):
        s.vision_annotations(regions=s.vision_regions(region_head_possible=True))


def test_manifest_inputs_list_the_users_videos(config, tmp_path):
    assert inputs.manifest_inputs(config) == [inputs.DEMO_ROOT]
    config["dataset"]["root"] = str(tmp_path)
    for rel in ("solo/cello/a.mp4", "solo/cello/.hidden.mp4", "solo/cello/notes.txt", "duet/cello_flute/d.MP4",
                "solo/stray.mp4"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert inputs.manifest_inputs(config) == [str(tmp_path / "duet/cello_flute/d.MP4"), str(tmp_path / "solo/cello/a.mp4")]
    (tmp_path / "splits.tsv").write_text("video_id\tsplit\n")
    assert inputs.manifest_inputs(config)[0] == str(tmp_path / "splits.tsv")
