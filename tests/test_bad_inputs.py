"""Messy datasets: every kind of bad input, built with ffmpeg, and what the pipeline does
with it under dataset.on_bad_input: fail (one message listing every problem) and skip (the
rest goes on, the bad videos are listed in results/manifest_rejected.tsv)."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from avsep.dataset import DatasetError, build_manifest, check_media
from conftest import make_media, run_snakemake

CHUNK = 1.0  # nmf.chunk_seconds of these tests
MAX_SECONDS = 3.0  # audio.max_seconds of these tests


def _truncated_faststart(path: Path) -> Path:
    """A download cut short: the index is at the front, so the header still promises 2.5 s."""
    full = make_media(path.with_name("full_" + path.name), seconds=2.5, extra=["-movflags", "+faststart"])
    path.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    full.unlink()
    return path


def _truncated_tail(path: Path) -> Path:
    """Cut before the index at the end (ffmpeg's default mp4 layout): nothing can be read."""
    full = make_media(path.with_name("full_" + path.name), seconds=2.0)
    path.write_bytes(full.read_bytes()[:3000])
    full.unlink()
    return path


#: Each bad input, how it is made, and the exact reason the manifest gives.
BAD = {
    "solo/cello/mute.mp4": (lambda p: make_media(p, seconds=2.0, audio=False), ["no audio stream"]),
    "solo/flute/blind.mp4": (lambda p: make_media(p, seconds=2.0, video=False), ["no video stream"]),
    "solo/cello/junk.mkv": (
        lambda p: p.write_bytes(b"not a video at all " * 64) and p,
        ["unreadable or truncated container (Invalid data found when processing input)"],
    ),
    "solo/cello/cut_tail.mp4": (
        _truncated_tail,
        ["unreadable or truncated container (moov atom not found)"],
    ),
    "solo/flute/cut_front.mp4": (_truncated_faststart, ["unreadable or truncated container (", "partial file)"]),
    "solo/flute/empty.mp4": (
        lambda p: make_media(p, seconds=2.0, extra=["-t", "0"]),
        ["zero duration (the container holds no audio or video to read)"],
    ),
    "solo/cello/short.mp4": (
        lambda p: make_media(p, seconds=0.5),
        ["audio is 0.5", "s long, shorter than one chunk (nmf.chunk_seconds 1 s)"],
    ),
    "solo/flute/long.mp4": (
        lambda p: make_media(p, seconds=5.0),
        ["5 s long, over audio.max_seconds (3 s); raise the limit or cut the video"],
    ),
    "solo/Old Cello/old.mp4": (
        lambda p: make_media(p, seconds=2.0),
        ["unknown instrument folder 'Old Cello': an instrument name holds only letters, digits and '_'"],
    ),
    "duet/cello_banjo/duo.mp4": (
        lambda p: make_media(p, seconds=2.0),
        ["duet folder 'cello_banjo' is not two known instruments joined by '_' (known: cello, flute)"],
    ),
    "solo/cello/twin.mp4": (
        lambda p: make_media(p, seconds=2.0),
        ["duplicate video id 'twin' (also ", "solo/flute/twin.mp4)"],
    ),
    "solo/flute/twin.mp4": (
        lambda p: make_media(p, seconds=2.0, freq=660.0),
        ["duplicate video id 'twin' (also ", "solo/cello/twin.mp4)"],
    ),
}

GOOD = {
    # Good inputs in awkward shapes: 5.1 at 48 kHz, mono at 8 kHz, an odd frame size
    # (FFV1 in Matroska), variable frame rate; all must be accepted.
    "solo/cello/c_surround.mp4": dict(channels=6, sample_rate=48000),
    "solo/cello/c_mono8k.mp4": dict(channels=1, sample_rate=8000),
    "solo/cello/c_plain.mp4": dict(),
    "solo/flute/f_odd.mkv": dict(size="161x97", vcodec="ffv1"),
    "solo/flute/f_vfr.mp4": dict(extra=["-vf", "setpts='N/10/TB+if(gte(N,7),0.35/TB,0)'", "-fps_mode", "vfr"]),
    "solo/flute/f_plain.mp4": dict(freq=880.0),
}


@pytest.fixture(scope="module")
def messy_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("messy")
    for rel, (make, _) in BAD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        make(root / rel)
    for rel, options in GOOD.items():
        make_media(root / rel, **{"seconds": 2.0, **options})
    return root


def _manifest(root, mode):
    return build_manifest(root, chunk_seconds=CHUNK, max_seconds=MAX_SECONDS, on_bad_input=mode,
                          val_fraction=0.0, test_fraction=0.34)


def _reason_matches(text: str, fragments: list[str]) -> bool:
    pos = 0
    for fragment in fragments:
        found = text.find(fragment, pos)
        if found < 0:
            return False
        pos = found + len(fragment)
    return True


def test_fail_lists_every_problem_at_once_naming_each_file(messy_root):
    with pytest.raises(DatasetError) as err:
        _manifest(messy_root, "fail")
    problems = err.value.problems
    assert str(err.value).endswith("Set dataset.on_bad_input: skip to leave these videos out and carry on.")
    by_file = {}
    for line in problems:
        path, reason = line.split(": ", 1)
        by_file.setdefault(Path(path).relative_to(messy_root).as_posix(), []).append(reason)
    assert set(by_file) == set(BAD)
    for rel, (_, fragments) in BAD.items():
        assert len(by_file[rel]) == 1, (rel, by_file[rel])
        assert _reason_matches(by_file[rel][0], fragments), (rel, by_file[rel][0])


def test_skip_keeps_the_good_videos_and_lists_the_rest_with_reasons(messy_root):
    table, rejected = _manifest(messy_root, "skip")
    assert sorted(table["path"].map(lambda p: Path(p).relative_to(messy_root).as_posix())) == sorted(GOOD)
    assert list(rejected.columns) == ["path", "video_id", "reason"]
    rel = rejected["path"].map(lambda p: Path(p).relative_to(messy_root).as_posix())
    assert sorted(rel) == sorted(BAD)
    for r, reason in zip(rel, rejected["reason"]):
        assert _reason_matches(reason, BAD[r][1]), (r, reason)
    # The awkward-but-good inputs are read as what they are.
    by_id = table.set_index("video_id")
    assert (by_id.loc["c_surround", "channels"], by_id.loc["c_surround", "sample_rate"]) == (6, 48000)
    assert (by_id.loc["f_odd", "width"], by_id.loc["f_odd", "height"]) == (161, 97)
    assert set(table["split"]) == {"train", "test"}


def test_probing_several_videos_at_once_gives_the_same_tables(messy_root):
    """The manifest rule probes two videos at a time: the manifest, the rejected videos and
    their reasons are those of probing one after another."""
    one = _manifest(messy_root, "skip")
    many = build_manifest(messy_root, chunk_seconds=CHUNK, max_seconds=MAX_SECONDS, on_bad_input="skip",
                          val_fraction=0.0, test_fraction=0.34, workers=4)
    pd.testing.assert_frame_equal(one[0], many[0])
    pd.testing.assert_frame_equal(one[1], many[1])
    with pytest.raises(DatasetError) as err:
        build_manifest(messy_root, chunk_seconds=CHUNK, max_seconds=MAX_SECONDS, on_bad_input="fail",
                       val_fraction=0.0, test_fraction=0.34, workers=4)
    assert len(err.value.problems) == len(BAD)


def test_audio_shorter_than_a_chunk_passes_when_chunks_are_shorter(messy_root):
    _, reasons = check_media(messy_root / "solo/cello/short.mp4", chunk_seconds=0.25, max_seconds=0)
    assert reasons == []


def test_no_limit_when_max_seconds_is_zero(messy_root):
    _, reasons = check_media(messy_root / "solo/flute/long.mp4", chunk_seconds=CHUNK, max_seconds=0)
    assert reasons == []


def _config(tmp_path, root, mode) -> Path:
    path = tmp_path / f"{mode}.yaml"
    path.write_text(yaml.safe_dump({
        "dataset": {"root": str(root), "on_bad_input": mode},
        "audio": {"max_seconds": MAX_SECONDS},
        "nmf": {"chunk_seconds": CHUNK},
        "split": {"val_fraction": 0.0, "test_fraction": 0.34},
        "mixtures": {"count": 1, "seconds": 1.0},
    }))
    return path


@pytest.mark.workflow
def test_workflow_fail_stops_at_the_manifest_with_every_message(messy_root, tmp_path):
    proc = run_snakemake(tmp_path, "results/manifest.tsv",
                         configs=[Path(__file__).parent / "config" / "tiny.yaml",
                                  _config(tmp_path, messy_root, "fail")], check=False)
    assert proc.returncode != 0
    log = (tmp_path / "logs" / "manifest.log").read_text()
    assert f"{len(BAD)} problem(s) in the dataset" in log
    for rel in BAD:
        assert str(messy_root / rel) in log
    assert not (tmp_path / "results" / "manifest.tsv").exists()
    # The console names the log to read.
    assert "logs/manifest.log" in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_workflow_skip_carries_on_and_extracts_the_good_videos(messy_root, tmp_path):
    run_snakemake(tmp_path, "extract",
                  configs=[Path(__file__).parent / "config" / "tiny.yaml",
                           _config(tmp_path, messy_root, "skip")])
    rejected = pd.read_csv(tmp_path / "results" / "manifest_rejected.tsv", sep="\t")
    assert len(rejected) == len(BAD)
    manifest = pd.read_csv(tmp_path / "results" / "manifest.tsv", sep="\t")
    assert len(manifest) == len(GOOD)
    for vid in manifest["video_id"]:
        assert (tmp_path / "results" / "audio" / f"{vid}.wav").stat().st_size > 0
        assert (tmp_path / "results" / "frames" / f"{vid}.h5").stat().st_size > 0
    assert "video(s) left out, listed in results/manifest_rejected.tsv" in (
        tmp_path / "logs" / "manifest.log").read_text()
