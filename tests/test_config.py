"""Config errors are caught before any job starts, each naming key, value and what is allowed."""


import pytest
import yaml

from avsep.config import (allowed_values, consistency_problems, localization_separator, possible_pairs,
                          schema_problems)
from conftest import REPO, run_snakemake

SCHEMA = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())


def _defaults() -> dict:
    """config/config.yaml with the schema's defaults, as the workflow sees it."""
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


def test_shipped_configs_are_valid():
    for name in ("config.yaml", "demo.yaml", "detector.yaml", "scale.yaml", "seed_preset.yaml", "music.yaml",
                 "music21.yaml", "urmp.yaml"):
        layer = yaml.safe_load((REPO / "config" / name).read_text())
        assert schema_problems(layer, SCHEMA) == [], name
    assert consistency_problems(_defaults()) == []


def test_real_data_presets_hold_together(tmp_path, monkeypatch):
    """MUSIC and MUSIC-21 before their fetch, and URMP layered on the MUSIC run's config, in its
    run folder with the data and the MUSIC run where the preset says."""
    from snakemake.utils import update_config

    def layered(*names):
        config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
        for name in names:
            update_config(config, yaml.safe_load((REPO / "config" / name).read_text()))
        from snakemake.utils import validate

        validate(config, str(REPO / "config" / "schema.yaml"))
        return config

    monkeypatch.chdir(tmp_path)
    assert consistency_problems(layered("music.yaml")) == []
    assert consistency_problems(layered("music21.yaml")) == []
    urmp = layered("music.yaml", "urmp.yaml")
    run = tmp_path / urmp["workdir"]
    run.mkdir(parents=True)
    monkeypatch.chdir(run)
    problems = consistency_problems(urmp)
    assert any(p.startswith("transfer.run: '../..' is not the folder of a finished run") for p in problems)
    assert any(p.startswith("dataset.root: '../../data/URMP/Dataset' is not a folder") for p in problems)
    (tmp_path / "data" / "URMP" / "Dataset").mkdir(parents=True)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "manifest.tsv").write_text("video_id\n")
    assert consistency_problems(urmp) == []
    urmp["mixtures"]["count"] = 5
    urmp["transfer"]["run"] = ""
    problems = consistency_problems(urmp)
    assert any("URMP has none of; set mixtures.count: 0" in p for p in problems)
    assert any("dataset.layout: urmp has no solo videos to train on; set transfer.run" in p for p in problems)


def test_wrong_type_names_key_value_and_allowed():
    problems = schema_problems({"nmf": {"n_components": "ten"}}, SCHEMA)
    assert problems == ["nmf.n_components: 'ten' is not allowed; allowed: an integer >= 1 and <= 1000"]


def test_unknown_key_suggests_the_close_one():
    problems = schema_problems({"nmf": {"chunkseconds": 3}}, SCHEMA)
    assert len(problems) == 1
    assert problems[0].startswith("nmf.chunkseconds: unknown key; nmf takes beta, chunk_seconds,")
    assert problems[0].endswith("did you mean nmf.chunk_seconds?")


def test_every_problem_is_reported_at_once():
    problems = schema_problems(
        {"nmf": {"chunk_seconds": -5, "loss": "l1"}, "vision": {"backbone": "vgg"}, "colour": 1},
        SCHEMA,
    )
    assert len(problems) == 4
    assert "nmf.chunk_seconds: -5 is not allowed; allowed: a number > 0" in problems
    assert "nmf.loss: 'l1' is not allowed; allowed: one of kl, euclidean, itakura_saito, beta" in problems
    assert any(p.startswith("vision.backbone: 'vgg' is not allowed; allowed: one of efficientnet_lite0, resnet18") for p in problems)
    assert any(p.startswith("colour: unknown key") for p in problems)


def test_allowed_values_words_lists_and_bounds():
    assert allowed_values({"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}) == (
        "a list of integer >= 1, at least 1 item(s)"
    )
    assert allowed_values({"type": "number", "exclusiveMinimum": 0, "maximum": 60}) == "a number > 0 and <= 60"


def test_n_fft_below_hop_length():
    config = _defaults()
    config["audio"].update(n_fft=256, hop_length=512)
    assert consistency_problems(config) == [
        "audio.n_fft: 256 is smaller than audio.hop_length (512); allowed: n_fft >= hop_length, "
        "or frames would skip samples"
    ]


def test_reference_method_must_be_evaluated():
    config = _defaults()
    config["evaluation"].update(methods=["mixture", "irm", "miml_nmf"], reference="oracle_nmf")
    assert consistency_problems(config) == [
        "evaluation.reference: 'oracle_nmf' is not among evaluation.methods (mixture, irm, miml_nmf); "
        "the paired differences compare every method with it"
    ]


def test_instrument_without_solo_videos_in_a_dataset(tmp_path):
    for name in ("cello", "flute"):
        for i in range(3):
            (tmp_path / "solo" / name).mkdir(parents=True, exist_ok=True)
            (tmp_path / "solo" / name / f"{name}{i}.mp4").write_bytes(b"")
    (tmp_path / "solo" / "oboe").mkdir()
    config = _defaults()
    config["dataset"].update(root=str(tmp_path), instruments=["cello", "oboe"])
    problems = consistency_problems(config)
    assert problems[0] == (
        f"dataset.instruments: 'oboe' has no solo videos in {tmp_path / 'solo'}; allowed: cello, flute"
    )


def test_possible_pairs_follows_the_split():
    # 5 videos at test 0.2: 1 test video each; 10 at 0.2: 2. Pairs across instruments.
    assert possible_pairs({"a": 5, "b": 5, "c": 10}, 0.2) == 1 * 1 + 1 * 2 + 1 * 2


def test_more_mixtures_than_pairs():
    config = _defaults()
    config["demo"].update(instruments=["cello", "flute", "violin"], videos_per_instrument=4)
    config["mixtures"]["count"] = 4
    assert consistency_problems(config) == [
        "mixtures.count: 4 is more than the 3 distinct pairs of different instruments the test "
        "split can hold (test videos per instrument: cello 1, flute 1, violin 1); allowed: at "
        "most 3, or raise split.test_fraction or add videos"
    ]


# Two runs: the schema's problems come first (all at once); the checks between keys and
# against the dataset run once the schema passes (all at once too).
CLI_CASES = {
    "schema": (
        {"nmf": {"n_components": "ten", "chunkseconds": 3, "chunk_seconds": -1.0}},
        ["3 problem(s) in the configuration",
         "nmf.n_components: 'ten' is not allowed",
         "nmf.chunkseconds: unknown key",
         "nmf.chunk_seconds: -1.0 is not allowed; allowed: a number > 0"],
    ),
    "between keys": (
        {"audio": {"n_fft": 256, "hop_length": 512}, "dataset": {"instruments": ["cello", "banjo", "flute"]},
         "mixtures": {"count": 500}},
        ["3 problem(s) in the configuration",
         "audio.n_fft: 256 is smaller than audio.hop_length (512)",
         "dataset.instruments: 'banjo' has no solo videos in the demo dataset",
         "mixtures.count: 500 is more than the 1 distinct pairs"],
    ),
}


@pytest.mark.workflow
@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_workflow_refuses_bad_config_before_any_job(case, tmp_path):
    layer, messages = CLI_CASES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(layer))
    proc = run_snakemake(tmp_path, configs=[path], check=False)
    assert proc.returncode != 0
    assert "problem(s) in the configuration (see config/README.md)" in proc.stderr
    for message in messages:
        assert message in proc.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def test_localization_needs_the_halves_classifier_and_an_evaluated_separator():
    config = _defaults()
    config["vision"]["method"] = "detector"
    config["evaluation"]["methods"] = ["mixture", "irm", "oracle_nmf"]
    config["evaluation"]["reference"] = "oracle_nmf"
    problems = consistency_problems(config)
    assert any(p.startswith("localization.methods: av, cam read the feature map") and "detector" in p
               for p in problems), problems
    assert not any(p.startswith("localization.separator") for p in problems)  # auto: oracle_nmf
    config["localization"]["separator"] = "miml_nmf"
    assert any(p.startswith("localization.separator: 'miml_nmf' is not among evaluation.methods")
               for p in consistency_problems(config))
    config["evaluation"]["methods"] = ["mixture"]
    config["localization"]["separator"] = "auto"
    assert any("separates nothing" in p for p in consistency_problems(config))
    config = _defaults()
    config["vision"]["head"] = "mlp"
    assert [p for p in consistency_problems(config) if p.startswith("localization")] == [
        "localization.methods: cam needs vision.head: linear (avsep computes CAM, not Grad-CAM)"]
    config["localization"]["enabled"] = False
    assert not [p for p in consistency_problems(config) if p.startswith("localization")]


def test_the_auto_separator_is_the_first_evaluated_method_that_needs_no_truth():
    config = _defaults()
    assert localization_separator(config) == "miml_nmf"
    config["evaluation"]["methods"] = ["mixture", "irm", "deep", "oracle_nmf"]
    assert localization_separator(config) == "oracle_nmf"
    config["evaluation"]["methods"] = ["mixture", "irm"]
    assert localization_separator(config) == "irm"
