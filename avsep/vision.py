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
    "classify_images",
    "train_classifier",
    "sample_indices",
    "confusion_matrix",
    "save_classifier",
    "load_classifier",
    "describe_halves",
    "present_instruments",
]

BACKBONES = ("resnet18", "mobilenet_v3_small", "densenet161")

# ImageNet statistics, so that ImageNet checkpoints see what they were trained on.
_MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
_STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


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
    from avsep.files import read_weights

    state = read_weights(path)
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
    score is the fraction of frames agreeing times their mean probability. If both sides
    end on one instrument, the weaker side takes its next label.

    Returns:
        ``{"left": {"instrument", "score", "votes"}, "right": {...}, "frames": n}``.
    """
    if not frames:
        raise ValueError("no frame to pool")
    ranked = {}
    for side in ("left", "right"):
        labels = [getattr(f, side) for f in frames]
        scores = [getattr(f, f"{side}_score") for f in frames]
        counts = Counter(labels)
        mean = {lab: float(np.mean([s for l, s in zip(labels, scores) if l == lab])) for lab in counts}
        order = sorted(counts, key=lambda lab: (counts[lab], mean[lab]), reverse=True)
        ranked[side] = [{"instrument": lab, "score": counts[lab] / len(frames) * mean[lab], "votes": counts[lab]}
                        for lab in order]
    left, right = ranked["left"][0], ranked["right"][0]
    if left["instrument"] == right["instrument"]:
        # Two players of one instrument are not what a duet holds: the side with the weaker
        # claim takes its runner-up, when it has one.
        weak = "left" if left["score"] < right["score"] else "right"
        if len(ranked[weak]) > 1:
            ranked[weak] = ranked[weak][1:]
    return {"frames": len(frames), "left": ranked["left"][0], "right": ranked["right"][0]}


def _to_batch(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` images to a normalised float batch ``(n, 3, size, size)``."""
    import torch.nn.functional as F

    out = []
    for img in images:
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255)
        out.append(F.interpolate(t[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0])
    return (torch.stack(out) - _MEAN) / _STD


def classify_images(model: nn.Module, images: Sequence[np.ndarray], *, input_size: int = 128,
                    device: str = "cpu", batch_size: int = 64) -> np.ndarray:
    """Class probabilities ``(n, L)`` of uint8 images ``(H, W, 3)`` of any size."""
    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = _to_batch(images[i : i + batch_size], input_size).to(device)
            probs.append(torch.softmax(model(x), dim=1).cpu().numpy())
    return np.concatenate(probs) if probs else np.zeros((0, 0), np.float32)


def for_training_from_scratch(model: nn.Module) -> nn.Module:
    """Let BatchNorm statistics follow a model trained from scratch: torchvision's
    MobileNetV3 keeps them with momentum 0.01, meant for fine-tuning, and in a few hundred
    steps they would lag far behind the weights (evaluation then runs at chance)."""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = max(module.momentum or 0.1, 0.1)
    return model


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    backbone: str = "resnet18",
    epochs: int = 8,
    batch_size: int = 32,
    lr: float = 1e-3,
    input_size: int = 128,
    seed: int = 0,
    device: str = "cpu",
    val: tuple[np.ndarray, np.ndarray] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train a classifier on whole solo frames, labelled by their folders.

    Augmentation (per image, seeded): a random crop of 60-100% of the area at aspect
    0.75-1.33 resized to ``input_size``, colour jitter and horizontal flips, so that a
    half-frame at test time, a different background or a mirrored player are familiar.

    Args:
        images: uint8 ``(N, H, W, 3)``; labels: int ``(N,)``.
        val: optional held-out ``(images, labels)``, scored after every epoch.

    Returns:
        the model (eval mode) and per-epoch ``{"epoch", "loss", "train_acc", "val_acc"}``.
    """
    from torchvision.transforms import v2

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_classifier(backbone, n_classes).to(device)
    for_training_from_scratch(model)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    augment = v2.Compose([
        v2.RandomResizedCrop(input_size, scale=(0.6, 1.0), ratio=(0.75, 1.33), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
    ])
    X = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)  # uint8 (N, 3, H, W)
    Y = torch.from_numpy(np.asarray(labels, np.int64))
    loss_fn = nn.CrossEntropyLoss()
    history = []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(X), generator=gen)
        total, correct = 0.0, 0
        for i in range(0, len(X), batch_size):
            idx = order[i : i + batch_size]
            if len(idx) < 2:
                continue
            torch.manual_seed(seed * 100003 + epoch * 1009 + i)  # augmentation draws, reproducible
            batch = torch.stack([(augment(X[j]).float() / 255 - _MEAN) / _STD for j in idx.tolist()]).to(device)
            target = Y[idx].to(device)
            out = model(batch)
            loss = loss_fn(out, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((out.argmax(1) == target).sum())
        sched.step()
        row = {"epoch": epoch + 1, "loss": total / len(X), "train_acc": correct / len(X), "val_acc": float("nan")}
        if val is not None and len(val[0]):
            probs = classify_images(model, list(val[0]), input_size=input_size, device=device)
            row["val_acc"] = float((probs.argmax(1) == np.asarray(val[1])).mean())
        history.append(row)
        if log:
            log(f"epoch {row['epoch']}/{epochs} loss {row['loss']:.4f} train_acc {row['train_acc']:.3f} "
                f"val_acc {row['val_acc']:.3f}")
    model.eval()
    return model, history


def sample_indices(n: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` indices spread evenly over ``n`` frames."""
    if n <= max_frames:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_frames).round().astype(int))


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """``(n, n)`` counts, rows true, columns predicted."""
    cm = np.zeros((n, n), int)
    np.add.at(cm, (np.asarray(true), np.asarray(pred)), 1)
    return cm


def save_classifier(path: str | Path, model: nn.Module, *, backbone: str, label_names: Sequence[str],
                    input_size: int, **extra) -> None:
    """Save a classifier with what :func:`load_classifier` needs to rebuild it."""
    from avsep.files import save_torch

    save_torch(path, {"state_dict": model.state_dict(), "backbone": backbone, "label_names": list(label_names),
                      "input_size": int(input_size), **extra})


def load_classifier(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a classifier saved by :func:`save_classifier`; returns ``(model, meta)``."""
    meta = torch.load(path, map_location="cpu", weights_only=False)
    model = build_classifier(meta["backbone"], len(meta["label_names"]))
    model.load_state_dict(meta["state_dict"])
    return model.to(device).eval(), meta


def _rounded(value):
    return round(value, 4) if isinstance(value, float) else value


def present_instruments(scored: Sequence[dict], threshold: float) -> list[str]:
    """The instruments a video shows, from ``{"instrument", "score"}`` entries: those whose
    score reaches ``threshold``, and always the surest one (a video shows something)."""
    ranked = sorted(scored, key=lambda e: e["score"], reverse=True)
    names = [e["instrument"] for e in ranked if e["score"] >= threshold] or [ranked[0]["instrument"]]
    return sorted(dict.fromkeys(names))


def describe_halves(item: str, evidence: Sequence[FrameLabels], indices: Sequence[int], timestamps: Sequence[float],
                    *, present_threshold: float = 0.5) -> dict:
    """The vision record of one video or mixture under the halves method: the instrument
    and score on each side, the instruments present, and the per-frame evidence."""
    pooled = pool_video_labels(evidence)
    sides = [pooled["left"], pooled["right"]]
    return {
        "item": item,
        "method": "halves",
        "instruments": [s["instrument"] for s in sides],
        "positions": ["left", "right"],
        "scores": [round(s["score"], 4) for s in sides],
        "boxes": [None, None],
        "present": present_instruments(sides, present_threshold),
        "frames": [
            {"index": int(i), "time": round(float(timestamps[i]), 3),
             **{k: _rounded(x) for k, x in dataclasses.asdict(e).items()}}
            for i, e in zip(indices, evidence)
        ],
    }
