"""The deep separator's audio: its own rate and STFT (Sound of Pixels: 11025 Hz, an STFT
of 1022 with hop 256), and the warp of the linear-frequency magnitude to a log-frequency
grid (256 bins) and of the network's mask back.

These settings are the model's, recorded in its checkpoint, and separate from the NMF
stages' ``audio.*``: a mixture is resampled to the model's rate to be seen, and the mask
is carried onto the mixture's STFT at the pipeline's rate to be applied
(:func:`mask_to_grid`).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Mapping

import numpy as np
import torch

from avsep.transforms import STFTConfig

__all__ = ["DeepAudio", "log_positions", "warp_matrix", "unwarp_matrix", "LogWarp", "mask_to_grid"]


@dataclasses.dataclass(frozen=True)
class DeepAudio:
    """The model's audio settings (``deep.audio``).

    Attributes:
        sample_rate: Hz the mixture is resampled to before the network sees it.
        n_fft, hop_length: its STFT (Hann); ``n_fft // 2 + 1`` linear bins.
        log_bins: bins of the log-frequency grid the network works on.
        clip_frames: STFT frames of one training clip and of one separation window.
    """

    sample_rate: int = 11025
    n_fft: int = 1022
    hop_length: int = 256
    log_bins: int = 256
    clip_frames: int = 128

    def __post_init__(self):
        if self.log_bins < 8 or self.log_bins > self.n_fft // 2 + 1:
            raise ValueError(f"deep.audio.log_bins must be in [8, n_fft // 2 + 1 = {self.n_fft // 2 + 1}], "
                             f"got {self.log_bins}")
        if self.clip_frames < 16:
            raise ValueError(f"deep.audio.clip_frames must be >= 16, got {self.clip_frames}")

    @classmethod
    def from_config(cls, d: Mapping) -> "DeepAudio":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})

    @property
    def stft(self) -> STFTConfig:
        return STFTConfig(self.sample_rate, self.n_fft, self.hop_length, "hann")

    @property
    def n_lin(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def clip_seconds(self) -> float:
        return self.clip_frames * self.hop_length / self.sample_rate


def log_positions(n_lin: int, n_log: int) -> np.ndarray:
    """Where the log bins sit, as fractional linear-bin indices: geometrically spaced from
    bin 1 to the last bin (the DC bin is left to the first log bin by the inverse warp)."""
    return np.geomspace(1.0, n_lin - 1.0, n_log)


@functools.lru_cache(maxsize=8)
def warp_matrix(n_lin: int, n_log: int) -> np.ndarray:
    """``(n_log, n_lin)``: each log bin a triangle over the linear bins around its position,
    of half-width one bin where the log grid is denser than the linear one (linear
    interpolation) and half the distance to its neighbours where it is sparser (so that the
    magnitude between two high log bins is averaged, not skipped). Rows sum to one. Cached
    (every batch and window builds the warp): read-only."""
    p = log_positions(n_lin, n_log)
    spacing = np.gradient(p)
    half = np.maximum(1.0, spacing)
    j = np.arange(n_lin)[None, :]
    W = np.clip(1.0 - np.abs(j - p[:, None]) / half[:, None], 0.0, None)
    W = (W / W.sum(axis=1, keepdims=True)).astype(np.float32)
    W.flags.writeable = False
    return W


@functools.lru_cache(maxsize=8)
def unwarp_matrix(n_lin: int, n_log: int) -> np.ndarray:
    """``(n_lin, n_log)``: each linear bin linearly interpolated between the two log bins
    around it (bins below the first or above the last take its value). Rows sum to one."""
    p = log_positions(n_lin, n_log)
    W = np.zeros((n_lin, n_log), np.float32)
    for j in range(n_lin):
        if j <= p[0]:
            W[j, 0] = 1.0
        elif j >= p[-1]:
            W[j, -1] = 1.0
        else:
            k = int(np.searchsorted(p, j)) - 1
            t = (j - p[k]) / (p[k + 1] - p[k])
            W[j, k], W[j, k + 1] = 1.0 - t, t
    W.flags.writeable = False
    return W


class LogWarp(torch.nn.Module):
    """The warp as two fixed matrices: :meth:`warp` takes ``(..., n_lin, T)`` to
    ``(..., n_log, T)``, :meth:`unwarp` the way back."""

    def __init__(self, n_lin: int, n_log: int):
        super().__init__()
        self.register_buffer("forward_matrix", torch.tensor(warp_matrix(n_lin, n_log)), persistent=False)
        self.register_buffer("inverse_matrix", torch.tensor(unwarp_matrix(n_lin, n_log)), persistent=False)

    def warp(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.forward_matrix, x)

    def unwarp(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.inverse_matrix, x)


def _interp_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``(len(dst), len(src))``: linear interpolation from increasing points ``src`` to
    ``dst``, holding the end values outside them (as :func:`numpy.interp`)."""
    W = np.zeros((len(dst), len(src)), np.float32)
    k = np.clip(np.searchsorted(src, dst) - 1, 0, len(src) - 2) if len(src) > 1 else np.zeros(len(dst), int)
    if len(src) == 1:
        W[:, 0] = 1.0
        return W
    t = np.clip((dst - src[k]) / (src[k + 1] - src[k]), 0.0, 1.0)
    rows = np.arange(len(dst))
    W[rows, k] = 1.0 - t
    W[rows, k + 1] += t
    return W


def mask_to_grid(mask: np.ndarray, audio: DeepAudio, target: STFTConfig, n_frames: int) -> np.ndarray:
    """A mask on the model's linear grid ``(n_lin, T)`` carried onto another STFT's grid
    ``(target.n_bins, n_frames)``, linearly in time (frame centres in seconds) and in
    frequency (Hz); frequencies above the model's Nyquist take the top bin's value."""
    src_f = np.arange(mask.shape[0]) * audio.sample_rate / audio.n_fft
    src_t = np.arange(mask.shape[1]) * audio.hop_length / audio.sample_rate
    dst_f = np.arange(target.n_bins) * target.sample_rate / target.n_fft
    dst_t = np.arange(n_frames) * target.hop_length / target.sample_rate
    return (_interp_matrix(src_f, dst_f) @ np.asarray(mask, np.float32) @ _interp_matrix(src_t, dst_t).T).astype(
        np.float32)
