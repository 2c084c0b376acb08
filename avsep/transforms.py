"""STFT settings and the cutting of spectrograms into fixed-length chunks.

The STFT is ``torch.stft`` with librosa's conventions (centred frames, zero padding,
periodic windows, no scaling), so it equals ``librosa.stft`` to float precision (a test
checks both directions). It is torch's rather than librosa's because every rule job is a
fresh Python process, and importing librosa (with scipy.signal and numba) costs 1.2 s per
job, about 80 s of the demo's wall time, where torch is loaded anyway for NMF.

Torch itself is imported on first use, not with the module: the workflow definition reads
``STFTConfig`` at every Snakemake start-up (twice per cluster job), and importing torch there
cost about 2.5 s of CPU each time.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["STFTConfig", "stft", "istft", "stft_window", "frames_per_chunk", "split_chunks", "join_chunks"]


@dataclasses.dataclass(frozen=True)
class STFTConfig:
    """Short-time Fourier transform settings.

    Attributes:
        sample_rate: Hz.
        n_fft: window length in samples; F = n_fft // 2 + 1 frequency bins.
        hop_length: samples between frames.
        window: ``hann``, ``hamming``, ``blackman``, ``bartlett`` or ``boxcar`` (periodic).
    """

    sample_rate: int
    n_fft: int
    hop_length: int
    window: str = "hann"

    def __post_init__(self):
        if self.hop_length > self.n_fft:
            raise ValueError(f"audio.hop_length ({self.hop_length}) must not exceed audio.n_fft ({self.n_fft})")
        if self.n_fft < 16 or self.hop_length < 1:
            raise ValueError(f"audio.n_fft must be >= 16 and hop_length >= 1, got {self.n_fft}, {self.hop_length}")
        if self.window not in _WINDOWS:
            raise ValueError(f"audio.window must be one of {sorted(_WINDOWS)}, got {self.window!r}")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


_WINDOWS = ("hann", "hamming", "blackman", "bartlett", "boxcar")


def stft_window(cfg: "STFTConfig") -> "torch.Tensor":
    """The periodic analysis window of ``cfg``."""
    import torch

    if cfg.window == "boxcar":
        return torch.ones(cfg.n_fft)
    return getattr(torch, f"{cfg.window}_window")(cfg.n_fft, periodic=True)


def stft(audio: np.ndarray, cfg: STFTConfig) -> np.ndarray:
    """Complex STFT of mono audio ``(nb_samples,)``; returns ``(nb_bins, nb_frames)``, complex64."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))
    spec = torch.stft(x, cfg.n_fft, cfg.hop_length, window=stft_window(cfg), center=True, pad_mode="constant",
                      return_complex=True)
    return spec.numpy()


def istft(spec: np.ndarray, cfg: STFTConfig, length: int) -> np.ndarray:
    """Inverse of :func:`stft` (windowed overlap-add); returns ``(length,)`` float32."""
    import torch

    X = torch.from_numpy(np.ascontiguousarray(spec, dtype=np.complex64))
    return torch.istft(X, cfg.n_fft, cfg.hop_length, window=stft_window(cfg), center=True, length=length).numpy()


def frames_per_chunk(chunk_seconds: float, cfg: STFTConfig) -> int:
    """STFT frames in one chunk of ``chunk_seconds`` (5 s at 44.1 kHz, hop 2048: 108)."""
    if chunk_seconds <= 0:
        raise ValueError(f"nmf.chunk_seconds must be positive, got {chunk_seconds}")
    return max(1, int(round(chunk_seconds * cfg.sample_rate / cfg.hop_length)))


def split_chunks(spec: np.ndarray, n_frames: int, *, pad: bool = False) -> np.ndarray:
    """Cut ``(nb_bins, nb_frames_total)`` into ``(nb_chunks, nb_bins, n_frames)``.

    With ``pad`` the last partial chunk is zero-padded and kept; without, it is dropped.
    """
    F, T = spec.shape
    n_chunks = -(-T // n_frames) if pad else T // n_frames
    if pad and n_chunks * n_frames > T:
        spec = np.concatenate([spec, np.zeros((F, n_chunks * n_frames - T), spec.dtype)], axis=1)
    return spec[:, : n_chunks * n_frames].reshape(F, n_chunks, n_frames).transpose(1, 0, 2)


def join_chunks(chunks: np.ndarray, total_frames: int) -> np.ndarray:
    """Inverse of :func:`split_chunks`: ``(nb_chunks, nb_bins, n)`` to ``(nb_bins, total_frames)``."""
    C, F, n = chunks.shape
    return chunks.transpose(1, 0, 2).reshape(F, C * n)[:, :total_frames]
