"""The bases cache: silent chunks, unit-norm bases, parameters carried and checked."""

import h5py
import numpy as np
import pytest

from avsep.bases import (
    GROUP_CHUNKS,
    BasesFileError,
    NMFConfig,
    bases_of_file,
    bases_params,
    compute_bases,
    read_bases,
    write_bases,
)
from avsep.dictionary import pool_bases, read_dictionaries, reduce_bases, write_dictionaries
from avsep.files import write_wav
from avsep.transforms import STFTConfig, frames_per_chunk, split_chunks, stft

SR = 16000
CFG = STFTConfig(SR, 1024, 250)  # 64 frames per 1 s chunk, aligned with the silence
NMF = NMFConfig(n_components=8, n_iter=50, chunk_seconds=1.0)


def _audio_with_silent_middle():
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    audio = (0.2 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    audio[SR : 2 * SR] = 0.0  # digital silence for the second chunk
    return audio


def test_silent_chunk_is_marked_and_not_factored():
    b = compute_bases(_audio_with_silent_middle(), CFG, NMF)
    assert b.W.shape == (3, CFG.n_bins, 8)
    assert b.active.tolist() == [True, False, True]
    assert np.all(b.W[1] == 0) and b.objective[1] == 0
    assert np.isfinite(b.W).all() and np.isfinite(b.H).all()
    np.testing.assert_allclose(np.linalg.norm(b.W[0], axis=0), 1.0, rtol=1e-5)
    np.testing.assert_allclose(b.start, [0.0, 1.0, 2.0], atol=0.02)


def test_bases_file_carries_and_checks_its_parameters(tmp_path):
    b = compute_bases(_audio_with_silent_middle(), CFG, NMF)
    params = bases_params(CFG, NMF)
    write_bases(tmp_path / "v.h5", b, params, source="v.wav")
    back, attrs = read_bases(tmp_path / "v.h5", expect=params, magnitude=True)
    np.testing.assert_array_equal(back.W, b.W)
    np.testing.assert_array_equal(back.magnitude, b.magnitude)
    assert attrs["nmf_n_components"] == 8 and attrs["stft_n_fft"] == 1024 and attrs["source"] == "v.wav"
    other = bases_params(CFG, NMFConfig(n_components=9, n_iter=50, chunk_seconds=1.0))
    with pytest.raises(BasesFileError, match="nmf_n_components=8 .expected 9."):
        read_bases(tmp_path / "v.h5", expect=other)
    with h5py.File(tmp_path / "v.h5", "a") as h5:
        h5.attrs["format_version"] = 0
    with pytest.raises(BasesFileError, match="format 0"):
        read_bases(tmp_path / "v.h5")


def test_same_input_gives_identical_bases():
    a = compute_bases(_audio_with_silent_middle(), CFG, NMF)
    b = compute_bases(_audio_with_silent_middle(), CFG, NMF)
    np.testing.assert_array_equal(a.W, b.W)


def _long_audio(seconds, sr, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    tone = 0.3 * np.sin(2 * np.pi * (300 + 40 * np.floor(t)) * t)
    return (tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def test_streamed_file_gives_the_bases_of_the_whole_signal(tmp_path):
    """More chunks than one group: the streamed STFT is the whole signal's, chunk for chunk,
    and the file written group by group holds what the in-memory path computes."""
    cfg = STFTConfig(8000, 256, 100)
    nmf_cfg = NMFConfig(n_components=4, n_iter=20, chunk_seconds=0.1, silence_db=-60.0)
    audio = _long_audio(0.1 * (GROUP_CHUNKS + 9) + 0.037, 8000)
    audio[8000:8800] = 0.0  # a silent stretch inside the first group
    whole = split_chunks(np.abs(stft(audio, cfg)), frames_per_chunk(0.1, cfg))
    write_wav(tmp_path / "a.wav", audio, 8000)
    done = []
    summary = bases_of_file(tmp_path / "a.wav", tmp_path / "a.h5", cfg, nmf_cfg,
                            progress=lambda d, n: done.append((d, n)), source="a.wav")
    back, attrs = read_bases(tmp_path / "a.h5", expect=bases_params(cfg, nmf_cfg), magnitude=True)
    mem = compute_bases(audio, cfg, nmf_cfg)
    assert len(back.active) == len(whole) > GROUP_CHUNKS
    assert done[-1] == (len(whole), len(whole)) and len(done) == 2
    np.testing.assert_allclose(back.magnitude, whole, rtol=1e-4, atol=1e-4)
    for name in ("magnitude", "W", "H", "active", "energy_db", "basis_energy", "start"):
        np.testing.assert_array_equal(getattr(back, name), getattr(mem, name), err_msg=name)
    np.testing.assert_array_equal(summary.active, mem.active)
    assert not back.active[10] and back.active[:10].all()
    assert attrs["source"] == "a.wav"


def test_bases_of_file_refuses_another_rate(tmp_path):
    write_wav(tmp_path / "a.wav", np.zeros(8000, np.float32), 8000)
    with pytest.raises(ValueError, match="is at 8000 Hz, the config says 16000"):
        bases_of_file(tmp_path / "a.wav", tmp_path / "a.h5", CFG, NMF)
    assert not (tmp_path / "a.h5").exists()


def _pool(n_videos=3, M=8, F=20, seed=0):
    rng = np.random.default_rng(seed)
    files = []
    for v in range(n_videos):
        W = rng.random((2, F, M)).astype(np.float32)
        W /= np.linalg.norm(W, axis=1, keepdims=True)
        files.append((f"vid{v}", W, np.array([True, v != 1]), rng.random((2, M)).astype(np.float32)))
    return pool_bases(files)


def test_pool_keeps_active_chunks_with_provenance():
    pool = _pool()
    assert pool.W.shape == (20, 5 * 8)  # vid1's second chunk is silent
    assert (pool.video_id == "vid1").sum() == 8
    assert set(pool.chunk[pool.video_id == "vid1"]) == {0}


@pytest.mark.parametrize("method", ["kmeans", "top", "random"])
def test_reduce_caps_the_dictionary_deterministically(method):
    pool = _pool()
    a = reduce_bases(pool, 12, method=method, seed=1)
    b = reduce_bases(pool, 12, method=method, seed=1)
    assert a.W.shape == (20, 12) and (a.W >= 0).all()
    np.testing.assert_array_equal(a.W, b.W)
    if method == "top":
        assert a.score.min() >= np.sort(pool.score)[-12]


def test_dictionary_file_round_trip(tmp_path):
    d = {"cello": reduce_bases(_pool(), 6), "flute": reduce_bases(_pool(seed=1), 4)}
    write_dictionaries(tmp_path / "d.h5", d, {"kind": "oracle"})
    back, attrs = read_dictionaries(tmp_path / "d.h5", ["flute"])
    np.testing.assert_array_equal(back["flute"].W, d["flute"].W)
    assert list(back["flute"].video_id) == list(d["flute"].video_id) and attrs["kind"] == "oracle"
    with pytest.raises(KeyError, match="no dictionary for \\['oboe'\\]"):
        read_dictionaries(tmp_path / "d.h5", ["oboe"])
