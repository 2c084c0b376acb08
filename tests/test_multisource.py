"""MIML on multi-source videos (config/multisource.yaml): the duets' split, which videos feed
MIML and the oracle dictionary, the weak labels and their cross-fitting, the purity of the
dictionaries, and the experiment's table."""

import copy
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from avsep import inputs
from avsep.bases import NMFConfig
from avsep.config import consistency_problems
from avsep.dataset import VideoEntry, assign_duet_splits, assign_splits
from avsep.demo.plan import DemoSpec, duet_pairs
from avsep.dictionary import Dictionary
from avsep.evaluation.multisource import multisource_table
from avsep.miml.labels import agreement_table, crossfit_folds, weak_labels
from avsep.miml.purity import BasisSources, dictionary_purity, stem_shares
from avsep.transforms import STFTConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(cfg, str(REPO / "config" / "schema.yaml"))
    return cfg


def _duet(k, a, b):
    return VideoEntry(f"duet-{k:02d}", Path(f"duet/{a}_{b}/duet-{k:02d}.mp4"), "duet", (a, b))


def test_duets_split_over_pairs_test_first_and_the_rest_train():
    pairs = [("cello", "flute")] * 4 + [("flute", "violin")] * 3 + [("cello", "violin")] * 3
    entries = [_duet(k, a, b) for k, (a, b) in enumerate(pairs)]
    split = assign_duet_splits(entries, seed=0, val_fraction=0.2, test_fraction=0.2)
    assert Counter(split.values()) == {"train": 6, "test": 2, "val": 2}
    pair_of = {e.video_id: e.labels for e in entries}
    # The held-out duets take one pair each before any pair gives two; every pair trains.
    assert len({pair_of[v] for v, s in split.items() if s == "test"}) == 2
    assert {pair_of[v] for v, s in split.items() if s == "train"} == set(pairs)
    # Deterministic, whatever the order of the entries; another seed deals differently.
    assert assign_duet_splits(entries[::-1], seed=0, val_fraction=0.2, test_fraction=0.2) == split
    others = [assign_duet_splits(entries, seed=s, val_fraction=0.2, test_fraction=0.2) for s in (1, 2, 3)]
    assert any(o != split for o in others)
    # One duet is held out; two keep one to train.
    assert list(assign_duet_splits(entries[:1], seed=0, val_fraction=0.2, test_fraction=0.2).values()) == ["test"]
    two = assign_duet_splits(entries[:2], seed=0, val_fraction=0.5, test_fraction=0.2)
    assert sorted(two.values()) == ["test", "train"]
    # The solos' split does not depend on the duets.
    solos = [VideoEntry(f"cello-{k}", Path(f"solo/cello/cello-{k}.mp4"), "solo", ("cello",)) for k in range(6)]
    with_duets = assign_splits(solos + entries, seed=0, val_fraction=0.2, test_fraction=0.2)
    alone = assign_splits(solos, seed=0, val_fraction=0.2, test_fraction=0.2)
    assert {v: with_duets[v] for v in alone} == alone


def test_demo_duets_cover_pairs_before_repeating_one():
    spec = DemoSpec(instruments=("cello", "flute", "trumpet", "violin"), duets=8)
    pairs = duet_pairs(spec)
    assert len(pairs) == 8 and len(set(pairs[:6])) == 6  # all 6 pairs once, then repeats
    assert Counter(i for p in pairs for i in p).most_common()[-1][1] >= 3  # every instrument in several


MULTI = pd.DataFrame(
    [
        ("cello-00", "solo", "cello", "train"), ("cello-01", "solo", "cello", "val"),
        ("cello-02", "solo", "cello", "test"), ("flute-00", "solo", "flute", "train"),
        ("flute-01", "solo", "flute", "val"), ("flute-02", "solo", "flute", "test"),
        ("duet-00", "duet", "cello,flute", "train"), ("duet-01", "duet", "cello,flute", "val"),
        ("duet-02", "duet", "cello,flute", "test"),
    ],
    columns=["video_id", "kind", "labels", "split"],
).assign(path=lambda t: "data/" + t["video_id"] + ".mp4")
PLAN = pd.DataFrame([("mix000", "cello-02", "flute-02", "cello", "flute")],
                    columns=["mix_id", "left_video", "right_video", "left_instrument", "right_instrument"])


def _stage(config, **miml):
    cfg = copy.deepcopy(config)
    cfg["miml"].update(miml)
    return inputs.StageInputs(cfg, MULTI, PLAN)


def test_train_on_and_solo_excluded_choose_the_videos_of_miml_and_the_oracle(config):
    assert _stage(config).miml_videos("train") == ["cello-00", "flute-00", "duet-00"]  # default: all
    assert _stage(config, train_on="solo").miml_videos("train") == ["cello-00", "flute-00"]
    assert _stage(config, train_on="multi").miml_videos("val") == ["duet-01"]
    s = _stage(config, solo_excluded=["cello"])
    assert s.miml_videos("train") == ["flute-00", "duet-00"] and s.miml_videos("val") == ["flute-01", "duet-01"]
    assert s.oracle_solos() == ["flute-00"]
    # The excluded instrument's solos stay in the split: their test video is still mixed.
    assert s.solos("test") == ["cello-02", "flute-02"] and s.mixtures() == ["mix000"]
    # Only the test duet is separated and scored; training duets are bases for MIML.
    assert s.test_duets() == ["duet-02"]
    assert s.all_duet_separations() == [f"results/separated/{m}/duet-02" for m in inputs.duet_methods(s.config)]
    assert "results/bases/duet-00.h5" in s.training_bases() and "results/bases/duet-02.h5" not in s.training_bases()
    assert s.video_facts(["duet-00"]) == {"duet-00": ["cello,flute", "train"]}


def test_vision_labels_of_miml_videos_are_cross_fitted_for_the_training_solos(config):
    s = _stage(config, labels="vision")
    # Validation solos and duets were never vision's training videos: its own records.
    assert s.miml_vision_labels() == [inputs.CROSSFIT_LABELS] + [
        f"results/vision/{v}.json" for v in ("duet-00", "cello-01", "flute-01", "duet-01")]
    assert s.crossfit_solos() == ["cello-00", "flute-00"]
    assert _stage(config).miml_vision_labels() == []


def test_solo_excluded_refuses_what_it_cannot_give(config):
    cfg = copy.deepcopy(config)
    cfg["miml"].update(solo_excluded=["cello", "kazoo"], train_on="solo")
    problems = consistency_problems(cfg)
    text = "\n".join(problems)
    assert "miml.train_on: solo gives MIML none" in text
    assert "evaluation.methods: oracle_nmf needs solo videos of every instrument" in text
    assert "miml.solo_excluded: 'kazoo' is not an instrument" in text
    multisource = yaml.safe_load((REPO / "config" / "multisource.yaml").read_text())
    cfg = copy.deepcopy(config)
    for block in ("demo", "miml", "evaluation"):
        cfg[block].update(multisource[block])
    cfg["demo"].update(yaml.safe_load((REPO / "config" / "demo.yaml").read_text())["demo"] | multisource["demo"])
    assert consistency_problems(cfg) == []


def test_crossfit_folds_deal_each_instrument_over_every_fold():
    videos = [f"{i}-{k}" for i in ("cello", "flute") for k in range(7)]
    labels = {v: v.split("-")[0] for v in videos}
    fold = crossfit_folds(videos, labels, 3, seed=0)
    for inst in ("cello", "flute"):
        counts = Counter(fold[v] for v in videos if labels[v] == inst)
        assert sorted(counts.values()) == [2, 2, 3]  # each fold model keeps 4 or 5 of 7
    assert crossfit_folds(videos[::-1], labels, 3, seed=0) == fold
    with pytest.raises(ValueError, match="cello has 2"):
        crossfit_folds(videos[:2] + videos[7:], labels, 3, seed=0)


def test_weak_labels_from_folders_or_vision_and_their_agreement():
    labels, table = weak_labels(MULTI, ["cello-00", "duet-00"], "folder")
    assert labels == {"cello-00": ["cello"], "duet-00": ["cello", "flute"]} and table["agree"].all()
    records = {"cello-00": {"present": ["flute"], "source": "crossfit"}, "duet-00": {"present": ["flute", "cello"]}}
    labels, table = weak_labels(MULTI, ["cello-00", "duet-00"], "vision", records)
    assert labels == {"cello-00": ["flute"], "duet-00": ["cello", "flute"]}
    assert table.set_index("video_id")["agree"].to_dict() == {"cello-00": False, "duet-00": True}
    agreement = agreement_table(table).set_index("kind")
    assert agreement.loc["solo", "source"] == "crossfit" and agreement.loc["solo", "agree_fraction"] == 0
    with pytest.raises(ValueError, match="duet-01 has no vision record"):
        weak_labels(MULTI, ["duet-01"], "vision", records)
    with pytest.raises(ValueError, match="sees no instrument in cello-00"):
        weak_labels(MULTI, ["cello-00"], "vision", {"cello-00": {"present": []}})


def _tone(freq, sr, seconds):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stem_shares_give_each_basis_to_the_stem_that_carries_its_energy():
    stft_cfg, nmf_cfg = STFTConfig(sample_rate=8000, n_fft=256, hop_length=128), NMFConfig(chunk_seconds=1.0)
    stems = {"cello": _tone(261.6, 8000, 2.0), "flute": _tone(2637.0, 8000, 2.0)}  # C4, E7
    F, n = stft_cfg.n_bins, 62  # frames of a 1 s chunk at hop 128
    freqs = np.arange(F) * 8000 / 256
    W = np.zeros((2, F, 2), np.float32)
    W[:, :, 0] = np.exp(-((freqs - 261.6) / 60) ** 2)[None]   # basis 0: a low partial
    W[:, :, 1] = np.exp(-((freqs - 2637.0) / 60) ** 2)[None]  # basis 1: a high one
    H = np.ones((2, 2, n), np.float32)
    names, shares = stem_shares(W, H, stems, stft_cfg, nmf_cfg)
    assert names == ["cello", "flute"] and shares.shape == (2, 2, 2)
    assert (shares[:, 0, 0] > 0.99).all() and (shares[:, 1, 1] > 0.99).all()
    np.testing.assert_allclose(shares.sum(axis=2), 1, atol=1e-6)
    # Swap the stems' names: the bases follow the sound, not the order.
    names, swapped = stem_shares(W, H, {"flute": stems["cello"], "cello": stems["flute"]}, stft_cfg, nmf_cfg)
    assert (swapped[:, 0, 1] > 0.99).all()


def test_purity_counts_the_bases_whose_source_is_the_instrument():
    shares = (["cello", "flute"], np.array([[[0.9, 0.1], [0.2, 0.8]]]))  # chunk 0: basis 0 cello, 1 flute
    sources = BasisSources({"cello-00": "cello", "flute-00": "flute"}, {"duet-00": shares}, {"duet-00", "duet-09"})
    pool = Dictionary(W=np.ones((4, 4), np.float32), video_id=np.array(["cello-00", "duet-00", "duet-00", "duet-09"]),
                      chunk=np.zeros(4, int), component=np.array([0, 0, 1, 3]), score=np.ones(4, np.float32))
    table = dictionary_purity({"cello": pool}, sources, {"cello": "solo and multi"}).iloc[0]
    # cello-00 and duet-00's basis 0 are cello, basis 1 is flute; duet-09 has no stems.
    assert (table["selected"], table["from_multi"], table["known"], table["pure"]) == (4, 3, 3, 2)
    assert table["purity"] == pytest.approx(2 / 3, abs=1e-4) and table["wrong_to"] == "flute"


def _scores(method_sdr):
    rows = []
    for (mix, inst), by_method in method_sdr.items():
        for method, sdr in by_method.items():
            rows.append({"mix_id": mix, "instrument": inst, "method": method, "sdr": sdr, "silent_reference": False})
    return pd.DataFrame(rows)


def test_multisource_table_compares_the_same_mixtures_and_says_oracle_is_missing():
    this = _scores({("mix0", "cello"): {"miml_nmf": 8.0}, ("mix0", "flute"): {"miml_nmf": 10.0},
                    ("mix1", "flute"): {"miml_nmf": 12.0}, ("mix1", "violin"): {"miml_nmf": 12.0}})
    normal = _scores({("mix0", "cello"): {"miml_nmf": 9.0, "oracle_nmf": 10.0},
                      ("mix0", "flute"): {"miml_nmf": 11.0, "oracle_nmf": 10.0},
                      ("mix1", "flute"): {"miml_nmf": 1.0, "oracle_nmf": 1.0},
                      ("mix1", "violin"): {"miml_nmf": 1.0, "oracle_nmf": 1.0}})
    table, figures = multisource_table(this, ["cello"], normal, reference_name="normal")
    assert figures["mixtures"] == 1 and figures["ratio"] == pytest.approx(0.9)  # only mix0 holds cello
    assert figures["paired"][0] == pytest.approx(-1.0)
    rows = table.set_index(["run", "method", "subset"])
    assert rows.loc[("this run", "miml_nmf", "excluded instruments"), "sdr_mean"] == 8.0
    assert rows.loc[("normal run", "oracle_nmf", "all sources"), "sdr_mean"] == 10.0
    assert "no oracle dictionary" in rows.loc[("this run", "oracle_nmf", "all sources"), "note"]
    with pytest.raises(ValueError, match="does not hold the same sources"):
        multisource_table(this, ["cello"], normal.replace({"mix0": "mix7"}))
    with pytest.raises(ValueError, match="no test mixture holds"):
        multisource_table(this, ["kazoo"])
