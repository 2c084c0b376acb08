"""Training the frame classifiers of the vision stage, and the helpers that the region
classifier and the detector share with it.

- :func:`train_classifier_head`: a head on the frozen features of an ImageNet-pretrained
  backbone (the default; a linear head is a multinomial logistic regression, fitted with
  scikit-learn at each strength of :data:`HEAD_C_GRID`);
- :func:`fit_classifier`: every layer of a model, on augmented frames
  (:func:`training_augmentation`), with label-smoothed cross-entropy (Szegedy et al. 2016),
  AdamW (Loshchilov & Hutter 2019) and a cosine schedule;
- :func:`train_classifier`: a torchvision classifier from random weights, through
  :func:`fit_classifier`.

Every one of them scores the held-out frames as it goes and keeps the best checkpoint by
validation accuracy, then loss (:func:`better_checkpoint`); the kept history row is marked
``selected`` and carries its validation predictions (:func:`mark_selected`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from avsep.errors import InputError
from avsep.vision.backbones import FeatureClassifier
from avsep.vision.classifier import augmented_batch, build_classifier, classify_images, embed_images

__all__ = [
    "AUGMENTATIONS",
    "HEAD_C_GRID",
    "for_training_from_scratch",
    "training_augmentation",
    "better_checkpoint",
    "mark_selected",
    "val_scores",
    "fit_classifier",
    "train_classifier",
    "logistic_head",
    "train_classifier_head",
    "sample_indices",
    "confusion_matrix",
]


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


def _accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float((probs.argmax(1) == np.asarray(labels)).mean()) if len(labels) else float("nan")


def better_checkpoint(row: dict, best: dict | None) -> bool:
    """Checkpoint selection: higher validation accuracy, then lower validation loss."""
    if best is None:
        return True
    if np.isnan(row["val_acc"]):
        return True  # no validation split: the last epoch
    return (row["val_acc"], -row["val_loss"]) > (best["val_acc"], -best["val_loss"])


def mark_selected(history: list[dict], best: dict | None, val_pred: np.ndarray | None) -> None:
    """Mark the kept row ``selected``; it also carries the validation predictions it made
    (``val_pred``, so that a caller need not classify the validation frames again)."""
    for row in history:
        row["selected"] = row is best
    if best is not None and val_pred is not None:
        best["val_pred"] = val_pred


def val_scores(probs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
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
            batch = augmented_batch(X, idx.tolist(), augment, seed * 100003 + epoch * 1009 + i).to(device)
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
        row["val_acc"], row["val_loss"] = val_scores(probs, val[1] if val is not None else np.zeros(0, int))
        if better_checkpoint(row, best):
            best, best_state, best_pred = row, copy.deepcopy(model.state_dict()), probs.argmax(1) if len(probs) else None
        history.append(row)
        if log:
            log(f"epoch {row['epoch']}/{epochs} loss {row['loss']:.4f} train_acc {row['train_acc']:.3f} "
                f"val_acc {row['val_acc']:.3f} val_loss {row['val_loss']:.4f}")
    mark_selected(history, best, best_pred)
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


#: Inverse regularisation strengths of the logistic-regression head, chosen on validation.
HEAD_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def logistic_head(F_train: np.ndarray, y_train: np.ndarray, n_classes: int, C: float, seed: int) -> nn.Linear:
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
        the :class:`~avsep.vision.backbones.FeatureClassifier` (eval mode) and the history, whose
        selected row holds ``val_pred`` (see :func:`fit_classifier`).
    """
    import copy

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
        row["val_acc"], row["val_loss"] = val_scores(probs, val[1])
        return probs.argmax(1)

    if head == "linear":
        for k, C in enumerate(HEAD_C_GRID if has_val else HEAD_C_GRID[:1]):
            linear = logistic_head(F_train.numpy(), y_train, n_classes, C, seed)
            with torch.no_grad():
                out = linear(F_train)
                loss = float(nn.functional.cross_entropy(out, torch.from_numpy(y_train)))
                train_acc = float((out.argmax(1).numpy() == y_train).mean())
            row = {"epoch": k + 1, "C": C, "loss": loss, "train_acc": train_acc}
            pred = validate(row, linear.to(device))
            if better_checkpoint(row, best):
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
            if better_checkpoint(row, best):
                best, best_state, best_pred = row, copy.deepcopy(model.head.state_dict()), pred
            history.append(row)
            if log and ((epoch + 1) % 10 == 0 or epoch + 1 == epochs):
                log(f"epoch {row['epoch']}/{epochs} loss {row['loss']:.4f} train_acc {row['train_acc']:.3f} "
                    f"val_acc {row['val_acc']:.3f} val_loss {row['val_loss']:.4f}")
    mark_selected(history, best, best_pred)
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
