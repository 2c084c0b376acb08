"""Stage 3 (method ``halves``): which instruments are on screen, and on which side.

An image classifier looks at the left and right halves of each sampled frame, as in the
seed. When both halves give the same instrument, the half that looks less like it is split
again and its quarters are classified; if they still agree, that half takes its
second-best label. Per-video pooling then votes over the sampled frames.

Backbones are torchvision models (``densenet161`` as the seed used; ``resnet18`` and
``mobilenet_v3_small`` for speed). Weights are only ever read from local files.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from avsep.errors import InputError

__all__ = [
    "BACKBONES",
    "build_classifier",
    "load_classifier_weights",
    "FrameLabels",
    "label_halves",
    "pool_video_labels",
]

BACKBONES = ("resnet18", "mobilenet_v3_small", "densenet161")


def build_classifier(backbone: str, n_classes: int) -> nn.Module:
    """A torchvision backbone, randomly initialised, with an ``n_classes``-way head."""
    import torchvision

    if backbone not in BACKBONES:
        raise InputError(f"vision.backbone must be one of {BACKBONES}, got {backbone!r}")
    model = getattr(torchvision.models, backbone)(weights=None)
    if backbone == "resnet18":
        model.fc = nn.Linear(model.fc.in_features, n_classes)
    elif backbone == "mobilenet_v3_small":
        model.classifier[-1] = nn.Linear(model.classifier[-1].in_features, n_classes)
    else:
        model.classifier = nn.Linear(model.classifier.in_features, n_classes)
    return model


def _head(model: nn.Module) -> nn.Linear:
    if hasattr(model, "fc"):
        return model.fc
    return model.classifier[-1] if isinstance(model.classifier, nn.Sequential) else model.classifier


def load_classifier_weights(
    model: nn.Module, path: str | Path, *, class_map: Sequence[int] | None = None
) -> nn.Module:
    """Load a local state dict into ``model``.

    Args:
        path: a ``.pt``/``.pth`` file holding a state dict (or a dict with ``state_dict``).
        class_map: for a checkpoint with another head (an ImageNet one, 1000 classes): the
            checkpoint class index of each of the model's classes; the head's rows are taken
            from those classes. ``None``: the checkpoint must have the model's class count.

    Raises:
        InputError: the file is missing or unreadable, or the class counts do not match.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"vision.weights: {path} does not exist (weights are never downloaded; give a local file)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file
        raise InputError(f"vision.weights: cannot read {path} as a PyTorch checkpoint ({err})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    head = _head(model)
    weight_key = next(name for name, param in model.named_parameters() if param is head.weight)
    n_model = head.out_features
    if weight_key not in state:
        raise InputError(f"vision.weights: {path} has no {weight_key!r}: not a checkpoint of this backbone")
    n_ckpt = state[weight_key].shape[0]
    bias_key = weight_key[: -len("weight")] + "bias"
    if class_map is not None:
        if len(class_map) != n_model:
            raise InputError(f"vision.class_map has {len(class_map)} entries for {n_model} instruments")
        if max(class_map) >= n_ckpt:
            raise InputError(f"vision.class_map names class {max(class_map)}, but {path} has {n_ckpt} classes")
        state = dict(state)
        state[weight_key] = state[weight_key][list(class_map)]
        if bias_key in state:
            state[bias_key] = state[bias_key][list(class_map)]
    elif n_ckpt != n_model:
        raise InputError(
            f"vision.weights: {path} has a {n_ckpt}-class head, the dataset has {n_model} instruments; "
            "give vision.class_map to map checkpoint classes to instruments"
        )
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing:
        raise InputError(f"vision.weights: {path} lacks {len(missing)} tensors of this backbone, e.g. {missing[:3]}")
    return model


@dataclasses.dataclass(frozen=True)
class FrameLabels:
    """What one frame shows: the label and its probability on each side."""

    left: str
    right: str
    left_score: float
    right_score: float
    split: bool  # whether the recursive split decided


def _halves(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = image.shape[1] // 2
    return image[:, :w], image[:, w:]


def label_halves(
    frame: np.ndarray, classify: Callable[[list[np.ndarray]], np.ndarray], label_names: Sequence[str]
) -> FrameLabels:
    """Label the left and right halves of ``frame`` ``(H, W, 3)``.

    Args:
        classify: images -> class probabilities ``(n, L)``.

    The seed's recursive split: when both halves' top labels agree, the half with the lower
    probability for that label is cut into its own left and right halves, which are
    classified; a quarter whose top label differs gives the half that label (the best such
    quarter). If both quarters agree too, the weaker half takes its second-best label.
    """
    left, right = _halves(frame)
    p = classify([left, right])
    top = p.argmax(axis=1)
    if top[0] != top[1]:
        return FrameLabels(label_names[top[0]], label_names[top[1]], float(p[0, top[0]]), float(p[1, top[1]]), False)
    shared = int(top[0])
    weak = int(np.argmin(p[:, shared]))  # the half that looks less like the shared label
    strong = 1 - weak
    quarters = classify(list(_halves(left if weak == 0 else right)))
    q_top = quarters.argmax(axis=1)
    other = [k for k in range(2) if q_top[k] != shared]
    if other:
        k = max(other, key=lambda k: quarters[k, q_top[k]])
        label, score = int(q_top[k]), float(quarters[k, q_top[k]])
    else:
        order = np.argsort(-p[weak])
        label, score = int(order[1]), float(p[weak, order[1]])
    labels = {strong: (shared, float(p[strong, shared])), weak: (label, score)}
    return FrameLabels(label_names[labels[0][0]], label_names[labels[1][0]], labels[0][1], labels[1][1], True)


def pool_video_labels(frames: Sequence[FrameLabels]) -> dict:
    """Pool per-frame labels into the video's instruments and positions.

    Each side takes its most frequent label over the frames (ties: higher mean score); the
    score is the fraction of frames agreeing times their mean probability.

    Returns:
        ``{"left": {"instrument", "score", "votes"}, "right": {...}, "frames": n}``.
    """
    if not frames:
        raise ValueError("no frame to pool")
    out = {"frames": len(frames)}
    for side in ("left", "right"):
        labels = [getattr(f, side) for f in frames]
        scores = [getattr(f, f"{side}_score") for f in frames]
        counts = Counter(labels)
        mean = {lab: float(np.mean([s for l, s in zip(labels, scores) if l == lab])) for lab in counts}
        best = max(counts, key=lambda lab: (counts[lab], mean[lab]))
        out[side] = {"instrument": best, "score": counts[best] / len(frames) * mean[best], "votes": counts[best]}
    return out
