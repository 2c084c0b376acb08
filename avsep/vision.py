"""Stage 3 (method ``halves``): which instruments are on screen, and on which side.

An image classifier looks at the left and right halves of each sampled frame, as in the
seed. When both halves give the same instrument, the half that looks less like it is split
again and its quarters are classified; if they still agree, that half takes its
second-best label. Per-video pooling then votes over the sampled frames.

The default classifier is a head trained on the frozen features of an ImageNet-pretrained
backbone (:mod:`avsep.backbones`, EfficientNet-Lite0 from its wheel): the course report
used an ImageNet-pretrained DenseNet-161, and a network trained from scratch on a few
dozen solo videos learns their backgrounds rather than their instruments. Fine-tuning the
whole pretrained network and training torchvision backbones from scratch are the other
choices. Weights are only ever read from local files or installed packages.

When the evidence is weak (either side's pooled probabilities separate their best two
instruments by less than a margin), the record is flagged ``uncertain`` and names the two
instruments with the highest pooled probability over both sides (:func:`describe_halves`).
When the dataset already says which instruments play (a duet folder ``violin_cello``),
:func:`assign_known_labels` only decides which is on which side.
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

#: torchvision backbones that :func:`build_classifier` builds with random weights.
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
    left_probs: tuple[float, ...] | None = None  # the half's class probabilities
    right_probs: tuple[float, ...] | None = None


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
    probs = {"left_probs": tuple(float(x) for x in p[0]), "right_probs": tuple(float(x) for x in p[1])}
    top = p.argmax(axis=1)
    if top[0] != top[1]:
        return FrameLabels(label_names[top[0]], label_names[top[1]], float(p[0, top[0]]), float(p[1, top[1]]), False,
                           **probs)
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
    return FrameLabels(label_names[labels[0][0]], label_names[labels[1][0]], labels[0][1], labels[1][1], True,
                       **probs)


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


def to_batch(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` images to a normalised float batch ``(n, 3, size, size)``."""
    import torch.nn.functional as F

    out = []
    for img in images:
        t = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div_(255)
        out.append(F.interpolate(t[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0])
    return (torch.stack(out) - _MEAN) / _STD


def inference_batch_size(device: str) -> int:
    """Images per forward pass without gradients (classifying, embedding): one on a CPU,
    32 on an accelerator.

    On a CPU the depthwise convolutions of EfficientNet-Lite are bound by memory, and a
    batch of one is the fastest (EfficientNet-Lite0 at 448 px, 2 threads: 0.074 s an
    image, against 0.10 s in batches of 4 and 0.16 s in batches of 16).
    """
    return 1 if str(device).startswith("cpu") else 32


def classify_images(model: nn.Module, images: Sequence[np.ndarray], *, input_size: int = 128,
                    device: str = "cpu", batch_size: int | None = None) -> np.ndarray:
    """Class probabilities ``(n, L)`` of uint8 images ``(H, W, 3)`` of any size, in
    batches of ``batch_size`` (default :func:`inference_batch_size`)."""
    batch_size = batch_size or inference_batch_size(device)
    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            x = to_batch(images[i : i + batch_size], input_size).to(device)
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


AUGMENTATIONS = ("strong", "light")


def training_augmentation(input_size: int, strength: str = "strong"):
    """The training views of a frame (torchvision ``transforms.v2`` on uint8 ``(3, H, W)``).

    ``strong``: a random crop of 30-100 % of the area at aspect 0.5-2 (a half frame, a
    quarter of the recursive split, or a player at another scale), horizontal flips,
    TrivialAugmentWide (Muller & Hutter 2021) for colour and geometry, occasional
    greyscale, and random erasing of a patch (occlusion). ``light``: a crop of 60-100 %,
    flips and a mild colour jitter, for small networks trained from random weights, which
    the strong views slow down.
    """
    from torchvision.transforms import v2

    if strength not in AUGMENTATIONS:
        raise InputError(f"vision.augment must be one of {AUGMENTATIONS}, got {strength!r}")
    if strength == "light":
        return v2.Compose([
            v2.RandomResizedCrop(input_size, scale=(0.6, 1.0), ratio=(0.75, 1.33), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05),
        ])
    return v2.Compose([
        v2.RandomResizedCrop(input_size, scale=(0.3, 1.0), ratio=(0.5, 2.0), antialias=True),
        v2.RandomHorizontalFlip(),
        v2.TrivialAugmentWide(),
        v2.RandomGrayscale(p=0.1),
        v2.RandomErasing(p=0.25, scale=(0.02, 0.15)),
    ])


def _augmented_batch(X: torch.Tensor, idx: Sequence[int], augment, seed: int) -> torch.Tensor:
    """Augmented, ImageNet-normalised float views of ``X[idx]`` (uint8 ``(N, 3, H, W)``);
    the draws are seeded by ``seed``, so a run is reproducible."""
    torch.manual_seed(seed)
    return torch.stack([(augment(X[j]).float() / 255 - _MEAN) / _STD for j in idx])


def _accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == np.asarray(labels)).mean()) if len(labels) else float("nan")


def _better(row: dict, best: dict | None) -> bool:
    """Checkpoint selection: higher validation accuracy, then lower validation loss."""
    if best is None:
        return True
    if np.isnan(row["val_acc"]):
        return True  # no validation split: the last epoch
    return (row["val_acc"], -row["val_loss"]) > (best["val_acc"], -best["val_loss"])


def _mark_selected(history: list[dict], best: dict | None, val_pred: np.ndarray | None) -> None:
    """Mark the kept row ``selected``; it also carries the validation predictions it made
    (``val_pred``, so that a caller need not classify the validation frames again)."""
    for row in history:
        row["selected"] = row is best
    if best is not None and val_pred is not None:
        best["val_pred"] = val_pred


def _val_scores(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Accuracy and cross-entropy of class probabilities against labels."""
    if not len(labels):
        return float("nan"), float("nan")
    p = np.clip(probs[np.arange(len(labels)), np.asarray(labels)], 1e-7, 1.0)
    return _accuracy(probs, labels), float(-np.log(p).mean())


def fit_classifier(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    input_size: int,
    seed: int = 0,
    label_smoothing: float = 0.1,
    augment: str = "strong",
    device: str = "cpu",
    val: tuple[np.ndarray, np.ndarray] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train every layer of ``model`` on augmented frames (:func:`training_augmentation`),
    with label-smoothed cross-entropy, AdamW and a cosine schedule. After every epoch the
    held-out ``val`` frames are scored; the epoch with the best validation accuracy (then
    loss) is the one returned.

    Args:
        images: uint8 ``(N, H, W, 3)``; labels: int ``(N,)``.
        val: optional held-out ``(images, labels)``.

    Returns:
        the model (eval mode) and per-epoch ``{"epoch", "loss", "train_acc", "val_acc",
        "val_loss", "selected"}``; the selected row also holds ``val_pred``, the class it
        predicted for each validation frame.
    """
    import copy

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = model.to(device)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    augment = training_augmentation(input_size, augment)
    X = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)  # uint8 (N, 3, H, W)
    Y = torch.from_numpy(np.asarray(labels, np.int64))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    history, best, best_state = [], None, None
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(X), generator=gen)
        total, correct = 0.0, 0
        for i in range(0, len(X), batch_size):
            idx = order[i : i + batch_size]
            if len(idx) < 2:
                continue
            batch = _augmented_batch(X, idx.tolist(), augment, seed * 100003 + epoch * 1009 + i).to(device)
            target = Y[idx].to(device)
            out = model(batch)
            loss = loss_fn(out, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += int((out.argmax(1) == target).sum())
        sched.step()
        row = {"epoch": epoch + 1, "loss": total / len(X), "train_acc": correct / len(X)}
        probs = (classify_images(model, list(val[0]), input_size=input_size, device=device)
                 if val is not None and len(val[0]) else np.zeros((0, 0)))
        row["val_acc"], row["val_loss"] = _val_scores(probs, val[1] if val is not None else np.zeros(0, int))
        if _better(row, best):
            best, best_state, best_pred = row, copy.deepcopy(model.state_dict()), probs.argmax(1) if len(probs) else None
        history.append(row)
        if log:
            log(f"epoch {row['epoch']}/{epochs} loss {row['loss']:.4f} train_acc {row['train_acc']:.3f} "
                f"val_acc {row['val_acc']:.3f} val_loss {row['val_loss']:.4f}")
    _mark_selected(history, best, best_pred)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model, history


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
    label_smoothing: float = 0.1,
    augment: str = "light",
    device: str = "cpu",
    val: tuple[np.ndarray, np.ndarray] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train a torchvision classifier from random weights on whole solo frames, labelled by
    their folders (:func:`fit_classifier` does the training).

    Returns:
        the model (eval mode) and the per-epoch history.
    """
    torch.manual_seed(seed)
    model = for_training_from_scratch(build_classifier(backbone, n_classes))
    return fit_classifier(model, images, labels, epochs=epochs, batch_size=batch_size, lr=lr,
                          input_size=input_size, seed=seed, label_smoothing=label_smoothing, augment=augment,
                          device=device, val=val, log=log)


def embed_images(model, images: Sequence[np.ndarray] | torch.Tensor, *, input_size: int, device: str = "cpu",
                 batch_size: int | None = None, augment=None, seed: int = 0) -> torch.Tensor:
    """Pooled backbone features ``(N, D)`` of uint8 images (a list of ``(H, W, 3)``, or a
    uint8 tensor ``(N, 3, H, W)`` when ``augment`` is given: each image is then one
    augmented view, drawn with ``seed``), in batches of ``batch_size`` (default
    :func:`inference_batch_size`)."""
    batch_size = batch_size or inference_batch_size(device)
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            if augment is None:
                x = to_batch(images[i : i + batch_size], input_size)
            else:
                x = _augmented_batch(images, range(i, min(i + batch_size, len(images))), augment, seed + i)
            out.append(model.embed(x.to(device)).cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


#: Inverse regularisation strengths of the logistic-regression head, chosen on validation.
HEAD_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def _logistic_head(F_train: np.ndarray, y_train: np.ndarray, n_classes: int, C: float, seed: int) -> nn.Linear:
    """A multinomial logistic regression (scikit-learn, L2, on standardised features),
    folded with its standardisation into one ``nn.Linear`` over the raw features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(F_train)
    clf = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(scaler.transform(F_train), y_train)
    W = np.zeros((n_classes, F_train.shape[1]))
    b = np.full(n_classes, -1e4)  # a class without training frames is never predicted
    W[clf.classes_] = clf.coef_ / scaler.scale_
    b[clf.classes_] = clf.intercept_ - (clf.coef_ * scaler.mean_ / scaler.scale_).sum(axis=1)
    head = nn.Linear(F_train.shape[1], n_classes)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(W).float())
        head.bias.copy_(torch.from_numpy(b).float())
    return head


def train_classifier_head(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    backbone: str = "efficientnet_lite0",
    weights: str = "",
    head: str = "linear",
    views: int = 0,
    epochs: int = 60,
    batch_size: int = 64,
    lr: float = 3e-3,
    input_size: int = 320,
    seed: int = 0,
    label_smoothing: float = 0.1,
    augment: str = "strong",
    device: str = "cpu",
    val: tuple[np.ndarray, np.ndarray] | None = None,
    log: Callable[[str], None] | None = None,
):
    """Train a head on the frozen features of an ImageNet-pretrained backbone.

    The backbone embeds every training frame once as it is (resized, as at labelling time)
    and ``views`` more times through :func:`training_augmentation`. The held-out ``val``
    frames are embedded once.

    - ``head="linear"``: a multinomial logistic regression on the standardised features
      (scikit-learn), fitted for each strength in :data:`HEAD_C_GRID`; the one with the
      best validation accuracy (then loss) is kept (the strongest regularisation without
      validation frames). One history row per strength.
    - ``head="mlp"``: one hidden layer, trained for ``epochs`` with label-smoothed
      cross-entropy, AdamW and a cosine schedule; the best epoch on validation is kept.

    Args:
        images: uint8 ``(N, H, W, 3)``; labels: int ``(N,)``.
        weights: the backbone's local ImageNet state dict; empty: the packaged one.

    Returns:
        the :class:`~avsep.backbones.FeatureClassifier` (eval mode) and the history, whose
        selected row holds ``val_pred`` (see :func:`fit_classifier`).
    """
    import copy

    from avsep.backbones import FeatureClassifier

    torch.manual_seed(seed)
    model = FeatureClassifier(backbone, n_classes, head=head, pretrained=True, weights=weights).to(device).eval()
    X = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    augment = training_augmentation(input_size, augment)
    feats = [embed_images(model, list(images), input_size=input_size, device=device)]
    if log:
        log(f"embedded {len(X)} training frames at {input_size} px")
    for v in range(views):
        feats.append(embed_images(model, X, input_size=input_size, device=device, augment=augment,
                                  seed=seed * 100003 + (v + 1) * 7919))
        if log:
            log(f"embedded augmented view {v + 1}/{views}")
    F_train = torch.cat(feats)
    y_train = np.tile(np.asarray(labels, np.int64), views + 1)
    has_val = val is not None and len(val[0])
    F_val = embed_images(model, list(val[0]), input_size=input_size, device=device) if has_val else None
    history, best, best_state, best_pred = [], None, None, None

    def validate(row, logits_fn):
        """Score ``row`` on the validation features; returns the predicted classes."""
        if not has_val:
            row["val_acc"], row["val_loss"] = float("nan"), float("nan")
            return None
        with torch.no_grad():
            probs = torch.softmax(logits_fn(F_val.to(device)), dim=1).cpu().numpy()
        row["val_acc"], row["val_loss"] = _val_scores(probs, val[1])
        return probs.argmax(1)

    if head == "linear":
        for k, C in enumerate(HEAD_C_GRID if has_val else HEAD_C_GRID[:1]):
            linear = _logistic_head(F_train.numpy(), y_train, n_classes, C, seed)
            with torch.no_grad():
                out = linear(F_train)
                loss = float(nn.functional.cross_entropy(out, torch.from_numpy(y_train)))
                train_acc = float((out.argmax(1).numpy() == y_train).mean())
            row = {"epoch": k + 1, "C": C, "loss": loss, "train_acc": train_acc}
            pred = validate(row, linear.to(device))
            if _better(row, best):
                best, best_state, best_pred = row, copy.deepcopy(linear.state_dict()), pred
            history.append(row)
            if log:
                log(f"C {C:g}: train_acc {train_acc:.3f} val_acc {row['val_acc']:.3f} val_loss {row['val_loss']:.4f}")
    else:
        F_train, Y_train = F_train.to(device), torch.from_numpy(y_train).to(device)
        gen = torch.Generator().manual_seed(seed)
        opt = torch.optim.AdamW(model.head.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
        loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        for epoch in range(epochs):
            model.head.train()
            order = torch.randperm(len(F_train), generator=gen).to(device)
            total, correct = 0.0, 0
            for i in range(0, len(order), batch_size):
                idx = order[i : i + batch_size]
                out = model.head(F_train[idx])
                loss = loss_fn(out, Y_train[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(idx)
                correct += int((out.argmax(1) == Y_train[idx]).sum())
            sched.step()
            row = {"epoch": epoch + 1, "loss": total / len(F_train), "train_acc": correct / len(F_train)}
            model.head.eval()
            pred = validate(row, model.head)
            if _better(row, best):
                best, best_state, best_pred = row, copy.deepcopy(model.head.state_dict()), pred
            history.append(row)
            if log and ((epoch + 1) % 10 == 0 or epoch + 1 == epochs):
                log(f"epoch {row['epoch']}/{epochs} loss {row['loss']:.4f} train_acc {row['train_acc']:.3f} "
                    f"val_acc {row['val_acc']:.3f} val_loss {row['val_loss']:.4f}")
    _mark_selected(history, best, best_pred)
    model.head.load_state_dict(best_state)
    return model.eval(), history


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
    """Save a classifier with what :func:`load_classifier` needs to rebuild it: a
    torchvision classifier, a :class:`~avsep.backbones.FeatureClassifier` (its head
    type recorded under ``head``) or a :class:`~avsep.regions.RegionClassifier`."""
    from avsep.backbones import FeatureClassifier
    from avsep.files import save_torch

    from avsep.regions import RegionClassifier

    arch = {}
    if isinstance(model, RegionClassifier):
        arch = {"architecture": "regions", "head": "linear", "n_classes": model.n_classes}
    elif isinstance(model, FeatureClassifier):
        arch = {"architecture": "features", "head": "mlp" if isinstance(model.head, nn.Sequential) else "linear"}
    save_torch(path, {"state_dict": model.state_dict(), "backbone": backbone, "label_names": list(label_names),
                      "input_size": int(input_size), **arch, **extra})


def load_classifier(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a classifier saved by :func:`save_classifier`; returns ``(model, meta)``."""
    from avsep.backbones import FeatureClassifier

    meta = torch.load(path, map_location="cpu", weights_only=False)
    if meta.get("architecture") == "regions":
        from avsep.regions import RegionClassifier

        model = RegionClassifier(meta["backbone"], len(meta["label_names"]), pretrained=False)
    elif meta.get("architecture") == "features":
        # The weights are all in the checkpoint: no pretrained file is read.
        model = FeatureClassifier(meta["backbone"], len(meta["label_names"]), head=meta["head"], pretrained=False)
    else:
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


def side_probabilities(evidence: Sequence[FrameLabels], label_names: Sequence[str]) -> dict | None:
    """Mean class probabilities of each half over the frames, ``{"left": {name: p},
    "right": {...}}``; ``None`` when the evidence carries no probabilities."""
    if not evidence or any(e.left_probs is None or e.right_probs is None for e in evidence):
        return None
    return {side: dict(zip(label_names, np.mean([getattr(e, f"{side}_probs") for e in evidence], axis=0).tolist()))
            for side in ("left", "right")}


def _margin(probs: dict) -> float:
    top = sorted(probs.values(), reverse=True)
    return top[0] - (top[1] if len(top) > 1 else 0.0)


def best_distinct_pair(side_probs: dict) -> tuple[list[str], list[float]]:
    """The two instruments with the highest pooled probability (left plus right), placed
    on the sides that fit them best. Returns ``(instruments, scores)``, left to right; the
    scores are each instrument's mean probability on its side."""
    pooled = {k: side_probs["left"][k] + side_probs["right"][k] for k in side_probs["left"]}
    a, b = sorted(pooled, key=lambda k: (-pooled[k], k))[:2]
    return orient_pair([a, b], side_probs)


def orient_pair(pair: Sequence[str], side_probs: dict) -> tuple[list[str], list[float]]:
    """Place two known instruments left and right, whichever way the halves' probabilities
    fit better; returns ``(instruments, scores)``, left to right."""
    a, b = pair
    left, right = side_probs["left"], side_probs["right"]
    order = [a, b] if left[a] + right[b] >= left[b] + right[a] else [b, a]
    return order, [round(left[order[0]], 4), round(right[order[1]], 4)]


def describe_halves(item: str, evidence: Sequence[FrameLabels], indices: Sequence[int], timestamps: Sequence[float],
                    *, present_threshold: float = 0.5, abstain_margin: float = 0.0,
                    label_names: Sequence[str] | None = None) -> dict:
    """The vision record of one video or mixture under the halves method: the instrument
    and score on each side, the instruments present, and the per-frame evidence.

    With per-frame probabilities and ``label_names``, the record also holds each side's
    mean probabilities (``side_probs``) and the margin between its best two instruments
    (``margins``). When either margin is below ``abstain_margin``, or the vote could not
    name two different instruments, the record is ``uncertain``: its instruments are then
    the best two distinct ones by pooled probability (:func:`best_distinct_pair`).
    """
    pooled = pool_video_labels(evidence)
    sides = [pooled["left"], pooled["right"]]
    instruments = [s["instrument"] for s in sides]
    scores = [round(s["score"], 4) for s in sides]
    record = {"item": item, "method": "halves"}
    side_probs = side_probabilities(evidence, label_names) if label_names is not None else None
    uncertain, reason = False, ""
    if side_probs is not None:
        margins = [_margin(side_probs["left"]), _margin(side_probs["right"])]
        if instruments[0] == instruments[1]:
            uncertain, reason = True, "both sides voted for one instrument"
        elif min(margins) < abstain_margin:
            uncertain, reason = True, f"side margin {min(margins):.3f} below vision.abstain_margin {abstain_margin:g}"
        if uncertain:
            instruments, scores = best_distinct_pair(side_probs)
        record["side_probs"] = {side: {k: round(v, 4) for k, v in probs.items()} for side, probs in side_probs.items()}
        record["margins"] = [round(m, 4) for m in margins]
    record.update({
        "instruments": instruments,
        "positions": ["left", "right"],
        "scores": scores,
        "boxes": [None, None],
        "present": present_instruments([{"instrument": i, "score": s} for i, s in zip(instruments, scores)],
                                       present_threshold),
        "uncertain": uncertain,
        "uncertain_reason": reason,
        "frames": [
            {"index": int(i), "time": round(float(timestamps[i]), 3),
             **{k: _rounded(x) for k, x in dataclasses.asdict(e).items() if not k.endswith("_probs")}}
            for i, e in zip(indices, evidence)
        ],
    })
    return record


def assign_known_labels(record: dict, labels: Sequence[str]) -> dict:
    """The visible instruments of an item whose instruments are known (``folder+vision``):
    ``labels`` (two instruments, from the dataset's folder) placed left and right as the
    vision record's evidence fits better.

    The halves method's side probabilities decide; a record without them (the detector)
    keeps its own order when it names both instruments, and is otherwise placed by the
    instruments it did name.

    Returns:
        ``{"instruments", "positions", "scores", "labels_from", "uncertain"}``.
    """
    labels = list(labels)
    if len(labels) != 2 or labels[0] == labels[1]:
        raise InputError(f"{record.get('item')}: folder+vision needs two different known instruments, got {labels}")
    if "side_probs" in record:
        order, scores = orient_pair(labels, record["side_probs"])
    else:
        seen = dict(zip(record["instruments"], record["positions"]))
        if seen.get(labels[1]) == "left" or seen.get(labels[0]) == "right":
            labels = labels[::-1]
        order, scores = labels, [None, None]
    return {"instruments": order, "positions": ["left", "right"], "scores": scores, "labels_from": "folder+vision",
            "uncertain": False}
