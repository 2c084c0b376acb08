"""The demo generator: held-out looks for the validation and test videos, the splits it
writes and the manifest honouring them, and a timbre that varies from video to video."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from avsep.dataset import DatasetError, assign_splits, build_manifest, scan_dataset
from avsep.demo.generate import generate_demo_dataset
from avsep.demo.pictures import OUTFITS, PALETTES
from avsep.demo.plan import DEFAULT_SPLIT, DemoSpec, instrument_styles
from avsep.demo.sound import Recording, draw_recording, render_melody

REPO = Path(__file__).resolve().parents[1]
SPLIT = {"seed": 3, "val_fraction": 0.25, "test_fraction": 0.25}
SPEC = DemoSpec(instruments=("cello", "flute", "trumpet"), videos_per_instrument=4, seconds=2.0, duets=1,
                fps=5.0, width=96, height=72, sample_rate=16000, seed=1, styles=4)


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    """A tiny generated demo dataset: 3 instruments x 4 videos of 2 s and a duet."""
    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "dataset", SPEC, split=SPLIT, workers=2)


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"video_id": str})


def test_val_and_test_videos_wear_styles_no_training_video_of_their_instrument_wears(demo_root):
    styles = _table(demo_root / "annotations" / "styles.tsv")
    splits = _table(demo_root / "splits.tsv").set_index("video_id")["split"]
    # One row per player: a duet has two, and every row carries its video's split.
    assert styles.groupby("video_id").size().to_dict() == {v: 2 if v.startswith("duet") else 1 for v in splits.index}
    assert (styles["split"] == styles["video_id"].map(splits)).all()
    for inst, rows in styles.groupby("instrument"):
        train = rows[rows["split"] == "train"]
        held = {s: rows[rows["split"] == s] for s in ("val", "test")}
        assert len(held["val"]) and len(held["test"]) and len(train)
        assert len(set(train["style"])) >= 2, inst  # several training looks
        for name, part in held.items():
            assert not set(part["style"]) & set(train["style"]), (inst, name)
            assert not set(part["palette"]) & set(train["palette"]), (inst, name)
            assert not set(part["outfit"]) & set(train["outfit"]), (inst, name)
        assert not set(held["val"]["style"]) & set(held["test"]["style"]), inst
        # Each held-out video shows its split's one style (duets included).
        assert held["val"]["style"].nunique() == 1 and held["test"]["style"].nunique() == 1
    assert set(styles.loc[styles["video_id"].str.startswith("duet"), "split"]) == {"test"}


def test_palettes_and_outfits_are_clearly_different_from_each_other():
    """So that a held-out palette or outfit is a new look, not a shade of a training one."""
    for inst, palettes in PALETTES.items():
        for (a, pa), (b, pb) in itertools.combinations(palettes.items(), 2):
            main = next(iter(pa))  # body, metal or bars
            if isinstance(pa[main], tuple):
                assert max(abs(x - y) for x, y in zip(pa[main], pb[main])) >= 50, (inst, a, b)
            else:
                assert pa[main] != pb[main], (inst, a, b)
    for (a, oa), (b, ob) in itertools.combinations(OUTFITS.items(), 2):
        top = max(abs(x - y) for x, y in zip(oa.top, ob.top)) >= 50
        assert top + (oa.build != ob.build) + (oa.pattern != ob.pattern) + (oa.lower != ob.lower) >= 2, (a, b)


def test_styles_are_seeded_by_demo_seed_and_instrument():
    a = instrument_styles("cello", count=5, seed=0)
    assert a == instrument_styles("cello", count=5, seed=0)
    assert a != instrument_styles("cello", count=5, seed=1)
    assert [s.role for s in a].count("train") == 3
    # Every style its own palette and outfit; every variant seen in training.
    assert len({s.look.palette for s in a}) == len({s.look.outfit for s in a}) == 5
    assert {s.look.variant for s in a if s.role != "train"} <= {s.look.variant for s in a if s.role == "train"}
    assert all(0.8 <= s.look.size <= 1.3 for s in a)


def test_splits_file_is_assign_splits_of_the_generated_videos(demo_root):
    written = _table(demo_root / "splits.tsv").set_index("video_id")["split"].to_dict()
    entries = scan_dataset(demo_root).entries
    assert written == assign_splits(entries, **SPLIT)
    # The split this seed gives differs from the default seed's, so the generator did use it.
    assert written != assign_splits(entries, **{**SPLIT, "seed": 0})
    manifest, _ = build_manifest(demo_root, **SPLIT)
    assert dict(zip(manifest["video_id"], manifest["split"])) == written


def _copy(root: Path, dest: Path) -> Path:
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns("annotations", "splits.tsv"))
    return dest


def test_manifest_takes_the_split_of_the_videos_splits_tsv_lists(demo_root, tmp_path, caplog):
    root = _copy(demo_root, tmp_path / "mine")
    seeded = assign_splits(scan_dataset(root).entries, seed=0, val_fraction=0.25, test_fraction=0.25)
    cello = sorted(v for v in seeded if v.startswith("cello"))
    # Every cello video trains but one, which is the test video; flute and trumpet unlisted.
    # A duet may train (MIML learns from it): the listed split holds.
    fixed = {v: "train" for v in cello[:-1]} | {cello[-1]: "test", "duet-00": "train", "gone-99": "val"}
    (root / "splits.tsv").write_text("video_id\tsplit\n" + "".join(f"{v}\t{s}\n" for v, s in fixed.items()))
    with caplog.at_level(logging.INFO, logger="avsep.dataset"):
        manifest, _ = build_manifest(root, seed=0, val_fraction=0.25, test_fraction=0.25)
    got = dict(zip(manifest["video_id"], manifest["split"]))
    assert {v: got[v] for v in cello} == {v: fixed[v] for v in cello} and got["duet-00"] == "train"
    assert {v: got[v] for v in got if v not in fixed} == {v: seeded[v] for v in got if v not in fixed}
    assert f"splits: 5 of 13 videos from {root / 'splits.tsv'}, 8 by the seeded rule" in caplog.text
    assert "gone-99" in caplog.text  # listed but not in the dataset: said, and ignored


@pytest.mark.parametrize(
    "rows, message",
    [
        ("cello-00\ttraining\n", r"splits.tsv line 2: video 'cello-00' has split 'training'; allowed: train, val, test"),
        ("cello-00\ttrain\ncello-00\ttest\n", r"line 3: video 'cello-00' is listed twice"),
        ("".join(f"flute-0{i}\ttest\n" for i in range(4)), r"instrument 'flute' has no train video"),
    ],
)
def test_manifest_refuses_a_bad_splits_tsv(demo_root, tmp_path, rows, message):
    root = _copy(demo_root, tmp_path / "bad")
    (root / "splits.tsv").write_text("video_id\tsplit\n" + rows)
    with pytest.raises(DatasetError, match=message):
        build_manifest(root, **SPLIT)


def test_manifest_refuses_a_splits_tsv_without_its_columns(demo_root, tmp_path):
    root = _copy(demo_root, tmp_path / "cols")
    (root / "splits.tsv").write_text("video\tset\ncello-00\ttrain\n")
    with pytest.raises(DatasetError, match="column.s. video_id, split missing"):
        build_manifest(root, **SPLIT)


def test_each_video_is_recorded_with_its_own_microphone_and_room(demo_root):
    rec = _table(demo_root / "annotations" / "recording.tsv")
    assert len(rec) == 3 * 4 + 2  # one row per player
    for inst, rows in rec[~rec["video_id"].str.startswith("duet")].groupby("instrument"):
        # Tilt and room differ between the videos of one instrument, within their ranges.
        tilt = rows["high_db"] - rows["low_db"]
        assert tilt.max() - tilt.min() > 2.0, inst
        assert rows["rt60"].max() - rows["rt60"].min() > 0.1, inst
        assert rows["low_db"].abs().max() <= 6 and rows["high_db"].abs().max() <= 6
        assert rows["rt60"].between(0.1, 1.0).all()
    duet = rec[rec["video_id"] == "duet-00"]
    assert duet["rt60"].nunique() == 1  # one room for both players


def test_boxes_stay_in_the_frame_and_players_come_in_many_sizes(demo_root):
    n_frames = int(SPEC.seconds * SPEC.fps)
    spread = []
    for inst in SPEC.instruments:
        sizes = []
        for path in sorted((demo_root / "solo" / inst).glob("*.mp4")):
            boxes = _table(demo_root / "annotations" / f"{path.stem}.tsv")
            assert len(boxes) == n_frames and set(boxes["instrument"]) == {inst}
            assert (boxes["x1"] >= 0).all() and (boxes["x2"] <= SPEC.width).all()
            assert (boxes["y1"] >= 0).all() and (boxes["y2"] <= SPEC.height).all()
            assert ((boxes["x2"] - boxes["x1"] >= 2) & (boxes["y2"] - boxes["y1"] >= 2)).all()
            sizes.append(np.median(np.hypot(boxes["x2"] - boxes["x1"], boxes["y2"] - boxes["y1"])))
        spread.append(max(sizes) / min(sizes))
    # Player scale (0.45-0.95 of the frame height) and instrument size (0.8-1.3) both vary.
    assert max(spread) > 1.6, spread
    duet = _table(demo_root / "annotations" / "duet-00.tsv")
    assert len(duet) == 2 * n_frames


def _band_db(audio: np.ndarray, sample_rate: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(audio.mean(axis=1))) ** 2
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / sample_rate)
    return 10 * np.log10(spectrum[(freqs >= low) & (freqs < high)].sum())


def test_the_microphone_tilts_the_spectrum_by_its_shelves():
    """One melody under two microphones: the high-to-low balance moves by the shelves' gains."""
    base = Recording(low_db=0.0, high_db=0.0, crossover_hz=1000.0, rt60=0.2, wet_gain=0.05, predelay=0.01, level=0.5)
    bright = dataclasses.replace(base, low_db=-6.0, high_db=6.0)
    dark = dataclasses.replace(base, low_db=6.0, high_db=-6.0)
    sr = 16000
    tilt = {}
    for name, rec in (("bright", bright), ("dark", dark)):
        audio = render_melody("violin", 2.0, sample_rate=sr, rng=np.random.default_rng(5), recording=rec)
        assert audio.shape == (2 * sr, 2) and np.abs(audio).max() == pytest.approx(0.5, abs=0.05)
        tilt[name] = _band_db(audio, sr, 3000, 7000) - _band_db(audio, sr, 100, 400)
    # The shelves give +-6 dB each way at the band edges, a little less near the crossover.
    assert tilt["bright"] - tilt["dark"] > 15.0


def test_one_melody_sounds_different_under_the_recordings_videos_draw():
    """The timbre itself varies, not only the melody and register: one melody (the same rng
    state) under the recordings of six videos spans more than 6 dB of spectral balance."""
    sr = 16000

    def tilt(k):
        rec = draw_recording(np.random.default_rng(k))
        audio = render_melody("flute", 2.0, sample_rate=sr, rng=np.random.default_rng(5), recording=rec)
        return _band_db(audio, sr, 3000, 7000) - _band_db(audio, sr, 100, 1000)

    tilts = [tilt(k) for k in range(6)]
    assert max(tilts) - min(tilts) > 6.0, tilts


def test_the_defaults_are_the_schemas():
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]
    demo = schema["demo"]["properties"]
    spec = DemoSpec()
    for name, prop in demo.items():
        default = getattr(spec, name)
        assert (list(default) if isinstance(default, tuple) else default) == prop["default"], name
    assert DEFAULT_SPLIT == {k: v["default"] for k, v in schema["split"]["properties"].items()}
    # The most styles the schema allows: each needs its own palette and outfit.
    assert demo["styles"]["maximum"] == min([len(OUTFITS)] + [len(p) for p in PALETTES.values()])


def test_the_tiny_config_holds_one_val_and_one_test_video_per_instrument():
    tiny = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    n = tiny["demo"]["videos_per_instrument"]
    from avsep.dataset import VideoEntry

    entries = [VideoEntry(f"c{i}", Path(f"c{i}.mp4"), "solo", ("cello",)) for i in range(n)]
    split = assign_splits(entries, seed=0, **tiny["split"])
    assert sorted(split.values()) == ["test", "train", "train", "val"]


def test_duets_carry_their_true_stems_which_sum_to_the_duet(demo_root):
    from avsep.media import decode_audio

    duets = sorted((demo_root / "duet").glob("*/*.mp4"))
    assert duets
    for video in duets:
        stems = {p.stem: sf.read(p)[0] for p in sorted((demo_root / "stems" / video.stem).glob("*.wav"))}
        assert sorted(stems) == sorted(video.parent.name.split("_"))
        total = sum(stems.values())
        total = total.mean(axis=1) if total.ndim > 1 else total
        heard = decode_audio(video, sample_rate=SPEC.sample_rate)
        n = min(len(heard), len(total))
        # Aligned to the sample, and equal up to the downmix's gain and the AAC coding noise.
        gain = np.dot(heard[:n], total[:n]) / np.dot(total[:n], total[:n])
        residual = np.sum((heard[:n] - gain * total[:n]) ** 2) / np.sum((gain * total[:n]) ** 2)
        assert residual < 0.01, f"{video.name}: the stems' sum differs from the duet by {residual:.3f} of its energy"


@pytest.mark.parametrize("damage, message", [
    ("missing", r"true stems: no .*\.wav \(the folder holds"),
    ("rate", r"true stems: .* is at 8000 Hz, the video's audio at 16000 Hz"),
    ("length", r"true stems: .* lasts 1\.00 s, the video's audio 2\.\d\d s"),
])
def test_bad_duet_stems_are_named_in_the_manifest_stage(demo_root, tmp_path, damage, message):
    root = tmp_path / "bad"
    shutil.copytree(demo_root, root)
    duet = next((root / "duet").glob("*/*.mp4"))
    stem_dir = root / "stems" / duet.stem
    first = sorted(stem_dir.glob("*.wav"))[0]
    audio, rate = sf.read(first)
    if damage == "missing":
        first.unlink()
        message = rf"true stems: no .*{first.name} \(the folder holds"
    elif damage == "rate":
        sf.write(first, audio[::2], 8000)
    else:
        sf.write(first, audio[:rate], rate)
    with pytest.raises(DatasetError, match=message):
        build_manifest(root, **SPLIT)
    manifest, rejected = build_manifest(root, **SPLIT, on_bad_input="skip")
    assert duet.stem not in set(manifest["video_id"]) and duet.stem in set(rejected["video_id"])
