"""What the deep separator sees of one source.

- ``vision``: the vision stage's class probabilities for the source's region. A training
  solo: the vision model (frozen) on ``deep.frames_per_video`` of its frames, averaged (the
  halves classifier on the whole frame, a solo's one region; the detector's surest
  instrument, its mean score at that instrument). A mixture or duet: the vision record's
  side (``halves``: the side's mean probabilities, ``side_probs``; the detector: its score
  at the instrument it found there).
- ``cnn``: the region's pixels at ``deep.image_size``, every sampled frame with its time.
  A training solo: the whole frame; a mixture or duet: the side's half (``halves``) or the
  detection's box (the detector).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from avsep.errors import InputError

__all__ = ["resized", "solo_vector", "record_vector", "region_images"]


def resized(images: np.ndarray | Sequence[np.ndarray], size: int) -> np.ndarray:
    """uint8 images (any sizes) to uint8 ``(n, size, size, 3)``, antialiased."""
    out = []
    for img in images:
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()[None]
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(t[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy())
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def one_hot_score(label: str, score: float, label_names: Sequence[str]) -> np.ndarray:
    v = np.zeros(len(label_names), np.float32)
    v[list(label_names).index(label)] = float(score)
    return v


def solo_vector(frames: np.ndarray, method: str, label_names: Sequence[str],
                classify: Callable[[np.ndarray], np.ndarray] | None = None,
                detect: Callable[[np.ndarray], object] | None = None) -> np.ndarray:
    """A training solo's vector from its sampled frames ``(n, H, W, 3)``.

    Args:
        classify: (``halves``) images -> probabilities ``(n, L)`` in ``label_names`` order.
        detect: (``detector``) frames -> detection rows (:func:`avsep.vision.detector.detect`).
    """
    if method == "halves":
        return np.asarray(classify(list(frames)), np.float32).mean(axis=0)
    rows = detect(frames)
    if rows.empty:
        return np.zeros(len(label_names), np.float32)
    best = rows.sort_values("score", ascending=False).groupby(["frame_index", "class_id"]).head(1)
    strength = best.groupby("class_id")["score"].sum()
    top = int(strength.idxmax())
    return one_hot_score(label_names[top], float(best[best["class_id"] == top]["score"].mean()), label_names)


def record_vector(record: Mapping, position: str, label_names: Sequence[str]) -> np.ndarray:
    """The vector of the source on ``position`` (left/right) from a vision record."""
    if "side_probs" in record:
        probs = record["side_probs"].get(position)
        if probs is None:
            raise InputError(f"{record.get('item')}: the vision record has no {position} side")
        missing = [n for n in label_names if n not in probs]
        if missing:
            raise InputError(f"{record.get('item')}: the vision record has no probability for "
                             f"{', '.join(missing)}; the deep model was trained on {', '.join(label_names)}")
        return np.asarray([probs[n] for n in label_names], np.float32)
    for inst, pos, score in zip(record.get("instruments", []), record.get("positions", []),
                                record.get("scores") or []):
        if pos == position and inst in label_names:
            return one_hot_score(inst, score if score is not None else 1.0, label_names)
    return np.zeros(len(label_names), np.float32)  # nothing seen there: the network gets no hint


def region_images(frames: np.ndarray, record: Mapping, position: str, size: int) -> np.ndarray:
    """The region of the source on ``position`` in every frame ``(n, H, W, 3)``: its box when
    the record gives one (the detector), else its half of the frame."""
    box = None
    for pos, b in zip(record.get("positions", []), record.get("boxes") or []):
        if pos == position and b is not None:
            box = b
    W = frames.shape[2]
    if box is not None:
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        x1, y1 = max(0, x1), max(0, y1)
        x2, y2 = max(x1 + 1, min(W, x2)), max(y1 + 1, min(frames.shape[1], y2))
        crops = frames[:, y1:y2, x1:x2]
    elif position == "left":
        crops = frames[:, :, : W // 2]
    elif position == "right":
        crops = frames[:, :, W // 2 :]
    else:
        raise InputError(f"{record.get('item')}: the deep separator needs each source's side (left or right), "
                         f"got {position!r}")
    return resized(crops, size)
