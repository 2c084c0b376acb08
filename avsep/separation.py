"""Stage 6: guided NMF separation with soft masks, and the ideal-ratio-mask upper bound.

For a mixture whose visible instruments are known, the instruments' dictionaries are
concatenated and held fixed while NMF learns the activations of every chunk (Gao et al.
2018, Sec. 3.3). Each source's magnitude estimate ``V_i = W_i H_i`` gives a soft mask
``V_i^p / sum_j V_j^p`` (p = 1 in the paper) on the complex mixture STFT, inverted by the
inverse STFT. Masks sum to one in every bin, so the estimates sum to the mixture.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from avsep.nmf import nmf
from avsep.transforms import STFTConfig, frames_per_chunk, istft, join_chunks, split_chunks, stft

__all__ = ["soft_masks", "apply_masks", "guided_nmf_separate", "ideal_ratio_masks", "track_assignment",
           "read_separation"]


def soft_masks(magnitudes: Sequence[np.ndarray], power: float = 1.0, eps: float = 1e-12) -> np.ndarray:
    """Ratio masks ``V_i^p / sum_j V_j^p``.

    Args:
        magnitudes: S arrays ``(nb_bins, nb_frames)``, non-negative.
        power: p; 1 gives magnitude ratios, 2 Wiener-like power ratios.

    Returns:
        ``(S, nb_bins, nb_frames)`` masks in [0, 1] summing to one in every bin; a bin where
        every source is zero is shared equally.
    """
    V = np.stack([np.asarray(m, np.float64) for m in magnitudes]) ** power
    total = V.sum(axis=0, keepdims=True)
    S = V.shape[0]
    return np.where(total > eps, V / np.maximum(total, eps), 1.0 / S).astype(np.float32)


def apply_masks(mixture: np.ndarray, masks: np.ndarray, cfg: STFTConfig, X: np.ndarray | None = None) -> np.ndarray:
    """Mask the complex STFT of ``mixture`` ``(nb_samples,)``; returns ``(S, nb_samples)``."""
    X = stft(mixture, cfg) if X is None else X
    return np.stack([istft(m * X, cfg, length=len(mixture)) for m in masks])


def ideal_ratio_masks(stems: Sequence[np.ndarray], cfg: STFTConfig, power: float = 1.0) -> np.ndarray:
    """Masks from the true stems' magnitudes, the upper bound of ratio masking."""
    return soft_masks([np.abs(stft(s, cfg)) for s in stems], power)


def guided_nmf_separate(
    mixture: np.ndarray,
    dictionaries: Sequence[np.ndarray],
    cfg: STFTConfig,
    *,
    chunk_seconds: float = 5.0,
    n_iter: int = 200,
    tol: float = 1e-4,
    loss: str | float = "kl",
    mask_power: float = 2.0,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Separate ``mixture`` into one track per dictionary.

    Args:
        mixture: mono audio ``(nb_samples,)``.
        dictionaries: per source, its bases ``(nb_bins, K_i)``.
        chunk_seconds: activations are learned per chunk of this length, all chunks at once.
        n_iter: the most iterations.
        tol: stop once every chunk's objective falls by less than this fraction of its start
            over 10 iterations (:func:`avsep.nmf.nmf`, the bases stage's rule); 0 runs all
            ``n_iter``. With the dictionaries fixed, the activations stop improving the
            tracks well before they stop lowering the objective (README, Speed).

    Returns:
        estimates ``(S, nb_samples)``, the final divergence per chunk ``(nb_chunks,)`` and
        the iterations run.
    """
    X = stft(mixture, cfg)
    F, T = X.shape
    for i, D in enumerate(dictionaries):
        if D.shape[0] != F:
            raise ValueError(f"dictionary {i} has {D.shape[0]} bins; the STFT has {F} (n_fft {cfg.n_fft})")
    n = min(frames_per_chunk(chunk_seconds, cfg), T)
    V = torch.from_numpy(np.ascontiguousarray(split_chunks(np.abs(X).astype(np.float32), n, pad=True))).to(device)
    W = torch.from_numpy(np.concatenate(dictionaries, axis=1).astype(np.float32)).to(device)
    result = nmf(V, W=W[None], fixed_w=True, n_iter=n_iter, tol=tol, loss=loss, seed=seed)
    H = result.H
    bounds = np.cumsum([0] + [D.shape[1] for D in dictionaries])
    parts = [
        join_chunks((W[None, :, a:b] @ H[:, a:b]).cpu().numpy(), T) for a, b in zip(bounds[:-1], bounds[1:])
    ]
    masks = soft_masks(parts, mask_power)
    return apply_masks(mixture, masks, cfg, X), result.objective.cpu().numpy(), int(result.n_iter)


def track_assignment(item: str, visible: dict, labels_from: str) -> dict:
    """Which separated track belongs to which player on screen: per instrument, its file,
    its position (left/right, or unknown) and, when the vision method gives them, its box
    and score."""
    n = len(visible["instruments"])
    boxes = visible.get("boxes") or [None] * n
    scores = visible.get("scores") or [None] * n
    return {
        "item": item,
        "labels_from": labels_from,
        "tracks": [
            {"instrument": inst, "file": f"{inst}.wav", "position": pos, "box": box, "score": score}
            for inst, pos, box, score in zip(visible["instruments"], visible["positions"], boxes, scores)
        ],
    }


def read_separation(folder) -> tuple[dict, list]:
    """A method's output folder: its ``separation.json`` and its tracks, as
    ``(info, [(instrument, position, audio), ...])`` in the method's order (none when it
    separated nothing: ``info["failed"]`` says why)."""
    import json
    from pathlib import Path

    from avsep.files import read_wav

    folder = Path(folder)
    info = json.loads((folder / "separation.json").read_text())
    tracks = [(inst, pos, read_wav(folder / f"{inst}.wav")[0]) for inst, pos in zip(info["instruments"], info["positions"])]
    return info, tracks
