"""Atomic outputs: nothing half-written is ever left under the final name."""

import os
import stat

import h5py
import numpy as np
import pytest

from avsep.files import (
    FORMAT_VERSION,
    CacheError,
    atomic_dir,
    atomic_path,
    read_frames,
    read_wav,
    resample,
    write_frames,
    write_wav,
)


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.tsv"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        write_wav(tmp_path / "a.wav", np.zeros(10, np.float32), 8000)
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.wav").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_atomic_dir_replaces_whole_folder(tmp_path):
    target = tmp_path / "mix"
    target.mkdir()
    (target / "stale.wav").write_text("old")
    with atomic_dir(target) as tmp:
        (tmp / "new.wav").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.wav"]


def test_wav_round_trip_is_exact_float32(tmp_path):
    audio = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    write_wav(tmp_path / "x.wav", audio, 22050)
    back, sr = read_wav(tmp_path / "x.wav")
    assert sr == 22050
    np.testing.assert_array_equal(back, audio)


def test_write_wav_refuses_multichannel(tmp_path):
    with pytest.raises(ValueError, match="mono"):
        write_wav(tmp_path / "x.wav", np.zeros((10, 2), np.float32), 8000)


def test_frames_round_trip_with_parameters(tmp_path):
    frames = np.random.default_rng(0).integers(0, 255, (3, 8, 10, 3), dtype=np.uint8)
    write_frames(tmp_path / "f.h5", frames, np.array([0.0, 0.5, 1.0]), fps=2.0, source="v.mp4")
    back, stamps, attrs = read_frames(tmp_path / "f.h5")
    np.testing.assert_array_equal(back, frames)
    assert attrs["fps"] == 2.0 and attrs["source"] == "v.mp4" and attrs["format_version"] == FORMAT_VERSION
    assert (attrs["width"], attrs["height"]) == (10, 8)


def test_frames_cache_of_other_parameters_or_format_is_refused(tmp_path):
    frames = np.zeros((2, 8, 10, 3), np.uint8)
    write_frames(tmp_path / "f.h5", frames, np.array([0.0, 1.0]), fps=1.0)
    read_frames(tmp_path / "f.h5", expect={"fps": 1.0, "width": 10, "height": 8})
    with pytest.raises(CacheError, match=r"f\.h5: made with other parameters: fps=1\.0 \(expected 2\.0\); delete it"):
        read_frames(tmp_path / "f.h5", expect={"fps": 2.0})
    with pytest.raises(CacheError, match=r"width=10 \(expected 12\)"):
        read_frames(tmp_path / "f.h5", expect={"width": 12})
    with h5py.File(tmp_path / "f.h5", "a") as h5:
        h5.attrs["format_version"] = 1
    with pytest.raises(CacheError, match=rf"written by frames format 1, this avsep reads {FORMAT_VERSION}"):
        read_frames(tmp_path / "f.h5")


def test_a_killed_writers_leftovers_are_cleared_by_the_next_write(tmp_path):
    # SIGKILL skips every cleanup: the temporary of the killed job stays behind.
    (tmp_path / ".v.k1ll3d00.tmp.h5").write_bytes(b"half")
    (tmp_path / ".mix001.k1ll3d00.tmp").mkdir()
    (tmp_path / ".v.x.k1ll3d00.tmp.h5").write_bytes(b"another output's")
    with atomic_path(tmp_path / "v.h5") as tmp:
        tmp.write_bytes(b"whole")
    with atomic_dir(tmp_path / "mix001") as tmp:
        (tmp / "a").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".v.x.k1ll3d00.tmp.h5", "mix001", "v.h5"]


def test_streamed_frames_file_reads_back_like_a_whole_one_and_is_reproducible(tmp_path):
    """extract_frames writes batch by batch (write_frame_stream); readers see what
    write_frames would have stored: frames, i / fps time stamps and the attributes."""
    from avsep.files import write_frame_stream

    frames = np.random.default_rng(1).integers(0, 255, (7, 8, 10, 3), dtype=np.uint8)
    n = write_frame_stream(tmp_path / "s.h5", (frames[i:i + 3] for i in range(0, 7, 3)), fps=2.0, source="v.mp4")
    assert n == 7
    write_frames(tmp_path / "w.h5", frames, np.arange(7) / 2.0, fps=2.0, source="v.mp4")
    (a, ta, attrs_a), (b, tb, attrs_b) = read_frames(tmp_path / "s.h5"), read_frames(tmp_path / "w.h5")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ta, tb)
    assert attrs_a == attrs_b
    first = (tmp_path / "s.h5").read_bytes()
    write_frame_stream(tmp_path / "s.h5", (frames[i:i + 3] for i in range(0, 7, 3)), fps=2.0, source="v.mp4")
    assert (tmp_path / "s.h5").read_bytes() == first


def test_streamed_frames_refuse_bad_batches_and_leave_nothing(tmp_path):
    from avsep.files import write_frame_stream

    good = np.zeros((2, 8, 10, 3), np.uint8)
    with pytest.raises(ValueError, match=r"a batch of \(8, 12, 3\) frames after \(8, 10, 3\)"):
        write_frame_stream(tmp_path / "f.h5", [good, np.zeros((1, 8, 12, 3), np.uint8)], fps=1.0)
    with pytest.raises(ValueError, match="no frames to write"):
        write_frame_stream(tmp_path / "f.h5", [], fps=1.0)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("orig, target, n", [(44100, 11025, 44100 * 3 + 7), (11025, 44100, 11025), (48000, 11025, 4801),
                                             (22050, 16000, 999)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resample_gives_librosas_samples_without_importing_it(orig, target, n, dtype):
    """avsep.files.resample calls soxr itself: the same samples, length and dtype as
    librosa.resample's default, without the 2 s of importing librosa's core in every job."""
    import librosa

    x = np.random.default_rng(n).standard_normal(n).astype(dtype)
    ours = resample(x, orig, target)
    theirs = librosa.resample(x, orig_sr=orig, target_sr=target)
    assert ours.dtype == theirs.dtype == dtype
    np.testing.assert_array_equal(ours, theirs)
    assert resample(x, orig, orig) is x


def test_resample_refuses_what_librosa_refuses():
    with pytest.raises(ValueError, match="not finite"):
        resample(np.array([0.0, np.nan, 1.0]), 44100, 11025)
    with pytest.raises(ValueError, match="1-D floating-point"):
        resample(np.zeros((2, 100)), 44100, 11025)
    with pytest.raises(ValueError, match="1-D floating-point"):
        resample(np.zeros(100, np.int16), 44100, 11025)


def test_resampling_a_job_does_not_import_librosa(tmp_path):
    """What a job pays: reading a 44.1 kHz WAV at the deep model's 11025 Hz in a fresh
    Python leaves librosa's core (and numba) unimported."""
    import subprocess
    import sys

    write_wav(tmp_path / "a.wav", np.zeros(44100, np.float32), 44100)
    code = ("import sys; from avsep.files import read_mono; y = read_mono(sys.argv[1], 11025); "
            "assert y.shape == (11025,), y.shape; print('numba' in sys.modules, 'librosa.core' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.wav")], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]
