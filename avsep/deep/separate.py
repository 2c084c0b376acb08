"""Separating a whole mixture with the deep separator.

The mixture is resampled to the model's rate, its log-frequency log-magnitude cut into
windows of ``clip_frames`` frames with half-window hops, and every source's mask computed
on every window from that source's visual input (the ``cnn`` image nearest the window's
middle). The windows' masks are overlap-added with Hann weights, warped back to linear
frequency, optionally normalised to sum to one, carried onto the mixture's STFT at the
pipeline's rate (:func:`avsep.deep.spectral.mask_to_grid`) and inverted there, so the
tracks keep the mixture's full band and length.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from avsep.deep.data import log_magnitude, visual_tensor
from avsep.deep.model import DeepSeparator
from avsep.deep.spectral import LogWarp, mask_to_grid
from avsep.separation import apply_masks
from avsep.transforms import STFTConfig, stft

__all__ = ["deep_masks", "separate_deep"]


def deep_masks(model: DeepSeparator, audio_model_rate: np.ndarray, visuals: Sequence[np.ndarray],
               visual_times: Sequence[np.ndarray] | None = None, *, normalize: bool = True, device: str = "cpu",
               windows_per_batch: int = 16) -> np.ndarray:
    """Masks ``(S, n_lin, T)`` on the model's linear grid for audio at the model's rate.

    Args:
        visuals: per source, its vector ``(L,)`` (``vision``) or images ``(n, S, S, 3)`` (``cnn``).
        visual_times: per source, its images' times (``cnn``).
    """
    a, kind = model.audio, model.cfg.visual
    X = stft(audio_model_rate, a.stft)
    warp = LogWarp(a.n_lin, a.log_bins)
    logmag = log_magnitude(warp.warp(torch.from_numpy(np.abs(X))))
    T, W = logmag.shape[1], a.clip_frames
    hop = W // 2
    n_win = 1 + max(0, -(-(T - W) // hop))
    padded = torch.full((logmag.shape[0], (n_win - 1) * hop + W), float(np.log(1e-4)))
    padded[:, :T] = logmag
    starts = [k * hop for k in range(n_win)]
    S = len(visuals)
    taper = torch.from_numpy(np.hanning(W + 2)[1:-1].astype(np.float32))
    acc = torch.zeros(S, a.n_lin, padded.shape[1])
    weight = torch.zeros(padded.shape[1])

    def seen(s: int, start: int):
        if kind == "vision":
            return visuals[s]
        middle = (start + W / 2) * a.hop_length / a.sample_rate
        return visuals[s][int(np.argmin(np.abs(np.asarray(visual_times[s]) - middle)))]

    model = model.to(device).eval()
    with torch.no_grad():
        for k in range(0, n_win, windows_per_batch):
            part = starts[k : k + windows_per_batch]
            x = torch.stack([padded[:, st : st + W] for st in part]).to(device)
            v = visual_tensor([seen(s, st) for st in part for s in range(S)], kind).to(device)
            logits = model.source_logits(x, v)
            m = warp.to(device).unwarp(torch.sigmoid(logits)).clamp(0, 1).cpu().reshape(len(part), S, a.n_lin, W)
            for b, st in enumerate(part):
                acc[:, :, st : st + W] += m[b] * taper
                weight[st : st + W] += taper
    masks = (acc / weight.clamp_min(1e-6))[:, :, :T]
    if normalize and S > 1:
        total = masks.sum(dim=0, keepdim=True)
        masks = torch.where(total > 1e-6, masks / total.clamp_min(1e-6), torch.full_like(masks, 1.0 / S))
    return masks.numpy()


def separate_deep(model: DeepSeparator, mixture: np.ndarray, sample_rate: int, native: STFTConfig,
                  visuals: Sequence[np.ndarray], visual_times: Sequence[np.ndarray] | None = None, *,
                  normalize: bool = True, device: str = "cpu") -> np.ndarray:
    """One track per source ``(S, nb_samples)`` of ``mixture`` at ``sample_rate``, its masks
    applied to the mixture's STFT ``native`` (the pipeline's ``audio.*``)."""
    from avsep.files import resample

    a = model.audio
    low = resample(np.asarray(mixture, np.float32), sample_rate, a.sample_rate)
    masks = deep_masks(model, np.asarray(low, np.float32), visuals, visual_times, normalize=normalize, device=device)
    X = stft(mixture, native)
    grid = np.stack([mask_to_grid(m, a, native, X.shape[1]) for m in masks])
    if normalize and len(masks) > 1:
        grid /= np.maximum(grid.sum(axis=0, keepdims=True), 1e-6)
    return apply_masks(mixture, grid, native, X)
