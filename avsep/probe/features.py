"""The probe's clips and their features.

- Clips. A track is cut into non-overlapping clips of :data:`CLIP_SECONDS`
  (:func:`cut_clips`); every clip is one training example, and a track's prediction is the
  mean of its clips' probabilities (:func:`avsep.probe.predict.predict_track`).
- Features. :func:`logmel_stats`: a log-mel spectrogram (librosa's, written out) summarised
  by the mean and the standard deviation of every band over the clip; it needs no weights
  and no training, so a probe on it is independent of every separator.
  :func:`miml_embedding`: the MIML network's per-basis embedding (the output of its shared
  per-basis MLP, before the sub-concept layer and the pooling to labels) pooled over a
  clip's NMF bases. The MIML network was trained on the bases of the same training videos
  that gave ``miml_nmf`` its dictionaries, so a probe on this feature shares training data
  with ``miml_nmf`` and is no independent judge of that method; it shows what the MIML
  representation knows.
  :func:`track_features` computes either, by name (:data:`FEATURES`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from avsep.errors import InputError

if TYPE_CHECKING:
    from avsep.bases import NMFConfig
    from avsep.miml.model import MIMLNet
    from avsep.transforms import STFTConfig

__all__ = [
    "CLIP_SECONDS",
    "POOLINGS",
    "FEATURES",
    "clip_starts",
    "cut_clips",
    "clip_levels_db",
    "logmel_stats",
    "logmel_clips",
    "basis_embeddings",
    "pool_basis_embeddings",
    "miml_embedding",
    "miml_clips",
    "track_features",
    "load_miml_feature",
]

#: Clip length in seconds: the default ``nmf.chunk_seconds``, so that a clip's MIML
#: embedding is the bag of exactly one NMF chunk, as the MIML network was trained on; a
#: 10-s test mixture gives two clips per separated track.
CLIP_SECONDS = 5.0

#: How :func:`pool_basis_embeddings` pools the per-basis embeddings over the bases.
POOLINGS = ("mean", "max")

#: Power floor of the log-mel spectrogram (-100 dB): silence gives finite features.
LOG_FLOOR = 1e-10

#: RMS below which a clip counts as silent and is not level-normalised (-80 dBFS).
SILENCE_RMS = 1e-4

#: The features a probe can read.
FEATURES = ("logmel", "miml")


# --- clips -----------------------------------------------------------------------------------


def clip_starts(n_samples: int, sample_rate: int, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """Start samples of the non-overlapping clips of ``seconds`` in ``n_samples`` of audio.

    A tail shorter than a clip is dropped, but there is always at least one clip: audio
    shorter than one clip is one clip of its own length (:func:`cut_clips`).

    Args:
        n_samples: length of the audio in samples (at least 1).
        sample_rate: Hz.
        seconds: clip length in seconds.

    Returns:
        ``(nb_clips,)`` int64 start samples.
    """
    if n_samples < 1:
        raise InputError("the audio has no samples: a probe needs at least one clip")
    if sample_rate <= 0 or seconds <= 0:
        raise InputError(f"sample_rate and clip seconds must be positive, got {sample_rate} Hz and {seconds} s")
    length = int(round(seconds * sample_rate))
    return np.arange(max(1, n_samples // max(1, length)), dtype=np.int64) * length


def cut_clips(wave: np.ndarray, sample_rate: int, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """Cut mono audio into non-overlapping clips of ``seconds`` (see :func:`clip_starts`).

    Args:
        wave: ``(nb_samples,)``.

    Returns:
        ``(nb_clips, clip_samples)``, where ``clip_samples`` is ``seconds * sample_rate``
        rounded, or ``nb_samples`` when the audio is shorter than one clip.
    """
    wave = _mono(wave)
    starts = clip_starts(len(wave), sample_rate, seconds)
    length = min(int(round(seconds * sample_rate)), len(wave))
    return np.stack([wave[s : s + length] for s in starts])


def clip_levels_db(wave: np.ndarray, sample_rate: int, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """RMS level in dBFS of every clip of :func:`cut_clips` (digital silence: -200), as the
    bases stage measures its chunks (:func:`avsep.bases.chunk_levels_db`): compare it with
    ``nmf.silence_db`` to leave silent clips out of a probe's training and test sets.

    Returns:
        ``(nb_clips,)``.
    """
    from avsep.bases import chunk_levels_db

    clips = cut_clips(wave, sample_rate, seconds)
    return chunk_levels_db(clips.reshape(-1), len(clips), clips.shape[1])


def _mono(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise InputError(f"expected mono audio of shape (nb_samples,), got shape {wave.shape}")
    if not np.isfinite(wave).all():
        raise InputError("the audio holds NaN or Inf samples")
    return wave


# --- features ----------------------------------------------------------------------------


def logmel_stats(
    wave: np.ndarray,
    sample_rate: int,
    *,
    n_mels: int = 64,
    n_fft: int = 1024,
    hop: int = 512,
    fmin: float = 50.0,
    normalize: bool = True,
) -> np.ndarray:
    """Per-band mean and standard deviation of a clip's log-mel spectrogram.

    The power mel spectrogram (Hann window, centred frames, Slaney mel filters: librosa's
    ``melspectrogram`` with ``pad_mode="constant"``, to float precision; a test checks it) is
    converted to dB with a floor of :data:`LOG_FLOOR` (-100 dB), so a silent clip gives
    -100 dB means and zero deviations rather than NaN. A clip shorter than one window is
    zero-padded to ``n_fft``. With ``normalize`` the clip is first scaled to unit RMS (unless
    it is silent, RMS below :data:`SILENCE_RMS`): a separated track is often quieter than
    the solo clips the probe was trained on, and loudness says nothing of the instrument.

    Args:
        wave: ``(nb_samples,)`` mono audio.
        sample_rate: Hz.
        n_mels: mel bands, from ``fmin`` to ``sample_rate / 2``.
        n_fft: window length in samples (1024: 46 ms at 22.05 kHz).
        hop: samples between frames.
        fmin: lowest mel frequency in Hz.
        normalize: scale the clip to unit RMS first.

    Returns:
        ``(2 * n_mels,)`` float32: the ``n_mels`` band means (dB), then the ``n_mels`` band
        standard deviations (dB).
    """
    wave = _mono(wave)
    if len(wave) == 0:
        raise InputError("the clip has no samples")
    if n_mels < 1 or n_fft < 16 or hop < 1:
        raise InputError(f"n_mels must be >= 1, n_fft >= 16 and hop >= 1, got {n_mels}, {n_fft}, {hop}")
    rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
    if normalize and rms > SILENCE_RMS:
        wave = wave / np.float32(rms)
    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    padded = np.pad(wave.astype(np.float64), n_fft // 2)  # centred frames, zeros beyond the ends
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * _hann(n_fft), axis=1)) ** 2  # (frames, n_fft // 2 + 1)
    mel = _mel_filters(sample_rate, n_fft, n_mels, fmin) @ power.T
    db = 10.0 * np.log10(np.maximum(mel, LOG_FLOOR))
    return np.concatenate([db.mean(axis=1), db.std(axis=1)]).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """The periodic Hann window (as ``scipy.signal.get_window("hann", n)``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _hz_to_mel(hz):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    linear = hz / (200.0 / 3)
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), linear)


def _mel_to_hz(mel):
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


@functools.lru_cache(maxsize=8)
def _mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float) -> np.ndarray:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` from ``fmin`` to Nyquist, each of
    unit area (Slaney's normalisation): the filter bank of ``librosa.filters.mel``'s
    defaults, written out so that a probe needs neither librosa nor its start-up time."""
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def logmel_clips(wave: np.ndarray, sample_rate: int, *, seconds: float = CLIP_SECONDS, **mel) -> np.ndarray:
    """:func:`logmel_stats` of every clip of a track (:func:`cut_clips`).

    Args:
        wave: ``(nb_samples,)`` mono audio.
        mel: keyword arguments of :func:`logmel_stats`.

    Returns:
        ``(nb_clips, 2 * n_mels)`` float32.
    """
    return np.stack([logmel_stats(clip, sample_rate, **mel) for clip in cut_clips(wave, sample_rate, seconds)])


def basis_embeddings(model: "MIMLNet", bags: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """The MIML network's per-basis embeddings: its shared per-basis MLP applied to every
    basis, before the sub-concept layer and the max/softmax pooling to labels.

    Args:
        model: a :class:`~avsep.miml.model.MIMLNet` (switched to eval mode: no dropout, BatchNorm
            with its running statistics).
        bags: ``(nb_bags, M, F)`` max-normalized bases (:func:`avsep.miml.bags.normalize_bases`).

    Returns:
        ``(nb_bags, M, D)`` float32, D the last hidden width of the network (``F`` when it
        has no hidden layer).
    """
    bags = np.asarray(bags, dtype=np.float32)
    n_bins = model.sub_concepts.in_features if not len(model.basis_mlp) else model.basis_mlp[0].in_features
    if bags.ndim != 3 or bags.shape[2] != n_bins:
        raise InputError(f"bags must have shape (nb_bags, M, {n_bins}) for this MIML network, got {bags.shape}")
    B, M, F = bags.shape
    dim = model.sub_concepts.in_features
    if B * M == 0:
        return np.zeros((B, M, dim), np.float32)
    model.eval()
    with torch.no_grad():
        h = model.basis_mlp(torch.from_numpy(bags.reshape(B * M, F)).to(device))
    return h.cpu().numpy().reshape(B, M, dim)


def _check_pooling(pooling: Sequence[str]) -> None:
    if isinstance(pooling, str) or not pooling or any(p not in POOLINGS for p in pooling):
        raise InputError(f"pooling must be a non-empty list of {POOLINGS}, got {pooling!r}")


def pool_basis_embeddings(embeddings: np.ndarray, pooling: Sequence[str] = POOLINGS) -> np.ndarray:
    """Pool per-basis embeddings over the bases.

    Args:
        embeddings: ``(..., nb_bases, D)``.
        pooling: any of ``mean`` and ``max``, concatenated in this order.

    Returns:
        ``(..., D * len(pooling))``.
    """
    _check_pooling(pooling)
    if embeddings.shape[-2] == 0:
        raise InputError("no bases to pool")
    parts = {"mean": lambda e: e.mean(axis=-2), "max": lambda e: e.max(axis=-2)}
    return np.concatenate([parts[p](embeddings) for p in pooling], axis=-1).astype(np.float32)


def miml_embedding(
    model: "MIMLNet",
    wave: np.ndarray,
    stft_cfg: "STFTConfig",
    nmf_cfg: "NMFConfig",
    *,
    pooling: Sequence[str] = POOLINGS,
    device: str = "cpu",
) -> np.ndarray:
    """The MIML network's per-basis embedding pooled over a clip's NMF bases.

    The clip is factored as the training videos were (:func:`avsep.bases.compute_bases`, a
    clip shorter than ``nmf_cfg.chunk_seconds`` is one chunk of its own length, as in
    :func:`avsep.miml.predict.predict_instrument`); the bases of its non-silent chunks are
    max-normalized, embedded (:func:`basis_embeddings`) and pooled over all of them
    (:func:`pool_basis_embeddings`). A clip whose chunks are all silent gives zeros.

    This feature shares training data with ``miml_nmf``: the network was trained on the
    bases of the training videos whose key bases are ``miml_nmf``'s dictionaries.

    Args:
        model: the trained MIML network (:func:`avsep.miml.model.load_model`).
        wave: ``(nb_samples,)`` mono audio at ``stft_cfg.sample_rate``.
        stft_cfg, nmf_cfg: the settings the network's bases were computed with.
        pooling: see :func:`pool_basis_embeddings`.

    Returns:
        ``(D * len(pooling),)`` float32.
    """
    from avsep.bases import compute_bases
    from avsep.miml.bags import normalize_bases

    wave = _mono(wave)
    if len(wave) == 0:
        raise InputError("the clip has no samples")
    _check_pooling(pooling)
    seconds = len(wave) / stft_cfg.sample_rate
    if seconds < nmf_cfg.chunk_seconds:
        nmf_cfg = dataclasses.replace(nmf_cfg, chunk_seconds=seconds)
    bases = compute_bases(wave, stft_cfg, nmf_cfg, device=device)
    dim = model.sub_concepts.in_features
    if not bases.active.any():
        return np.zeros(dim * len(pooling), np.float32)
    emb = basis_embeddings(model, normalize_bases(bases.W[bases.active]), device=device)
    return pool_basis_embeddings(emb.reshape(-1, dim), pooling)


def miml_clips(
    model: "MIMLNet",
    wave: np.ndarray,
    stft_cfg: "STFTConfig",
    nmf_cfg: "NMFConfig",
    *,
    seconds: float = CLIP_SECONDS,
    pooling: Sequence[str] = POOLINGS,
    device: str = "cpu",
) -> np.ndarray:
    """:func:`miml_embedding` of every clip of a track (:func:`cut_clips`), each clip
    factored on its own.

    Returns:
        ``(nb_clips, D * len(pooling))`` float32.
    """
    return np.stack([miml_embedding(model, clip, stft_cfg, nmf_cfg, pooling=pooling, device=device)
                     for clip in cut_clips(wave, stft_cfg.sample_rate, seconds)])


def track_features(feature: str, wave: np.ndarray, sample_rate: int, *, seconds: float = CLIP_SECONDS,
                   miml: tuple | None = None, device: str = "cpu") -> np.ndarray:
    """The clip features ``(nb_clips, D)`` of one track: :func:`logmel_clips` for
    ``logmel``; :func:`miml_clips` for ``miml``, with ``miml = (model, stft_cfg, nmf_cfg)``."""
    if feature == "logmel":
        return logmel_clips(wave, sample_rate, seconds=seconds)
    if feature == "miml":
        if miml is None:
            raise InputError("the miml feature needs the MIML network and its STFT and NMF settings")
        model, stft_cfg, nmf_cfg = miml
        if sample_rate != stft_cfg.sample_rate:
            raise InputError(f"the miml feature reads audio at {stft_cfg.sample_rate} Hz, got {sample_rate} Hz")
        return miml_clips(model, wave, stft_cfg, nmf_cfg, seconds=seconds, device=device)
    raise InputError(f"probe feature must be one of {FEATURES}, got {feature!r}")


def load_miml_feature(path: str, stft: dict, nmf: dict, device: str = "cpu") -> tuple:
    """The ``miml`` argument of :func:`track_features`: the trained MIML network in ``path``
    (:func:`avsep.miml.model.load_model`) with the ``audio`` and ``nmf`` settings its bases
    were computed with, ``(model, stft_cfg, nmf_cfg)``."""
    from avsep.bases import NMFConfig
    from avsep.miml.model import load_model
    from avsep.transforms import STFTConfig

    model, _ = load_model(path, device)
    return model, STFTConfig(**stft), NMFConfig(**nmf)
