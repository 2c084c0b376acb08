"""The input contract: duet folder parsing, scanning problems and the deterministic split."""

from pathlib import Path

import pytest

from avsep.dataset import DatasetError, VideoEntry, assign_splits, parse_duet_folder, scan_dataset

KNOWN = ["accordion", "acoustic_guitar", "cello", "flute", "guitar", "violin"]


@pytest.mark.parametrize(
    "name, expected",
    [
        ("acoustic_guitar_violin", ("acoustic_guitar", "violin")),
        ("violin_acoustic_guitar", ("violin", "acoustic_guitar")),
        ("cello_flute", ("cello", "flute")),
        ("guitar_cello", ("guitar", "cello")),
        ("cello_banjo", None),
        ("cello", None),
        ("cello_cello", None),
    ],
)
def test_parse_duet_folder_matches_known_names(name, expected):
    assert parse_duet_folder(name, KNOWN) == expected


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")


def test_scan_reads_labels_from_folders_and_parses_duets(tmp_path):
    _touch(tmp_path, "solo/acoustic_guitar/g1.mp4", "solo/violin/v1.mkv", "solo/violin/notes.txt",
           "duet/acoustic_guitar_violin/d1.webm")
    scan = scan_dataset(tmp_path)
    entries = {e.video_id: e for e in scan.entries}
    assert not scan.rejected
    assert set(entries) == {"g1", "v1", "d1"}  # notes.txt is not a video
    assert entries["g1"].labels == ("acoustic_guitar",)
    assert entries["d1"].kind == "duet" and entries["d1"].labels == ("acoustic_guitar", "violin")


def test_scan_restricts_to_configured_instruments(tmp_path):
    _touch(tmp_path, "solo/cello/c1.mp4", "solo/flute/f1.mp4", "solo/violin/v1.mp4",
           "duet/cello_flute/d1.mp4", "duet/cello_violin/d2.mp4")
    scan = scan_dataset(tmp_path, instruments=["cello", "flute"])
    assert {e.video_id for e in scan.entries} == {"c1", "f1", "d1"}
    # Left out on purpose, counted, and not a problem.
    assert scan.excluded == {"violin": 1, "cello_violin": 1} and not scan.rejected


def test_scan_rejects_each_bad_file_with_its_reason(tmp_path):
    _touch(tmp_path, "solo/cello/same.mp4", "solo/flute/same.mp4", "solo/flute/f.mp4",
           "duet/cello_banjo/d.mp4", "solo/Old Cello/o.mp4", "solo/stray.mp4")
    scan = scan_dataset(tmp_path)
    reasons = {Path(r.path).relative_to(tmp_path).as_posix(): r.reason for r in scan.rejected}
    assert "not two known instruments" in reasons["duet/cello_banjo/d.mp4"]
    assert "duplicate video id 'same' (also" in reasons["solo/cello/same.mp4"]
    assert "duplicate video id 'same' (also" in reasons["solo/flute/same.mp4"]
    assert "unknown instrument folder 'Old Cello'" in reasons["solo/Old Cello/o.mp4"]
    assert "outside any instrument folder" in reasons["solo/stray.mp4"]
    assert [e.video_id for e in scan.entries] == ["f"]


def test_scan_refuses_configured_instrument_without_folder(tmp_path):
    _touch(tmp_path, "solo/cello/c.mp4")
    with pytest.raises(DatasetError, match="names 'oboe', but .* has no such folder"):
        scan_dataset(tmp_path, instruments=["cello", "oboe"])


def test_scan_requires_solo_folder(tmp_path):
    with pytest.raises(DatasetError, match="solo"):
        scan_dataset(tmp_path)


def _entries(counts):
    return [VideoEntry(f"{lab}{i}", Path(f"{lab}{i}.mp4"), "solo", (lab,)) for lab, n in counts.items()
            for i in range(n)]


def test_split_is_per_instrument_deterministic_and_seeded():
    entries = _entries({"cello": 6, "flute": 5, "violin": 3})
    a = assign_splits(entries, seed=3, val_fraction=0.2, test_fraction=0.2)
    b = assign_splits(list(reversed(entries)), seed=3, val_fraction=0.2, test_fraction=0.2)
    assert a == b  # independent of listing order
    for lab in ("cello", "flute", "violin"):
        splits = [a[e.video_id] for e in entries if e.labels[0] == lab]
        assert splits.count("test") >= 1 and splits.count("train") >= 1
    others = [assign_splits(entries, seed=s, val_fraction=0.2, test_fraction=0.2) for s in range(4, 10)]
    assert any(o != a for o in others)


def test_split_of_one_instrument_ignores_others():
    alone = assign_splits(_entries({"cello": 6}), seed=0, val_fraction=0.2, test_fraction=0.2)
    together = assign_splits(_entries({"cello": 6, "flute": 4}), seed=0, val_fraction=0.2, test_fraction=0.2)
    assert all(together[k] == v for k, v in alone.items())


def test_split_refuses_instrument_with_too_few_videos():
    with pytest.raises(DatasetError, match="'flute' has 1 solo video"):
        assign_splits(_entries({"cello": 4, "flute": 1}), seed=0, val_fraction=0.0, test_fraction=0.25)


def test_duets_are_always_test():
    entries = _entries({"cello": 3}) + [VideoEntry("d", Path("d.mp4"), "duet", ("cello", "flute"))]
    assert assign_splits(entries, seed=0, val_fraction=0.0, test_fraction=0.34)["d"] == "test"
