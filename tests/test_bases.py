"""The bases cache: silent chunks, unit-norm bases, parameters carried and checked."""

import h5py
import numpy as np
import pytest

from avsep.bases import BasesFileError, NMFConfig, bases_params, compute_bases, read_bases, write_bases
from avsep.dictionary import pool_bases, read_dictionaries, reduce_bases, write_dictionaries
from avsep.transforms import STFTConfig

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
    assert np.all(b.W[1] == 0) and np.isnan(b.objective[1])
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
