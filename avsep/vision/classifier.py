"""Frame classifiers of the vision stage: building them, loading their weights, saving and
reloading them, and running them on images.

Every vision classifier takes what :func:`to_batch` gives: RGB images resized to a square
and normalised with the ImageNet mean and standard deviation. Three kinds share one
checkpoint format (:func:`save_classifier`, :func:`load_classifier`):

- a torchvision classifier (:data:`BACKBONES`: ResNet-18, He et al. 2016; MobileNetV3-Small,
  Howard et al. 2019; DenseNet-161, Huang et al. 2017) built with random weights
  (:func:`build_classifier`), then trained from scratch or given a local checkpoint
  (:func:`load_classifier_weights`);
- a :class:`~avsep.vision.backbones.FeatureClassifier`: an ImageNet-pretrained backbone and
  a head on its pooled features;
- a :class:`~avsep.vision.regions.RegionClassifier`: the same backbone, its linear head
  scoring every window of a grid.

Weights are only ever read from local files or installed packages. Training is in
:mod:`avsep.vision.training`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from avsep.errors import InputError
from avsep.vision.backbones import IMAGENET_MEAN, IMAGENET_STD, FeatureClassifier

__all__ = [
    "BACKBONES",
    "build_classifier",
    "load_classifier_weights",
    "to_batch",
    "augmented_batch",
    "inference_batch_size",
    "classify_images",
    "embed_images",
    "save_classifier",
    "load_classifier",
]

#: torchvision backbones that :func:`build_classifier` builds with random weights.
BACKBONES = ("resnet18", "mobilenet_v3_small", "densenet161")

# ImageNet statistics, so that ImageNet checkpoints see what they were trained on.
_MEAN = torch.tensor(IMAGENET_MEAN)[:, None, None]
_STD = torch.tensor(IMAGENET_STD)[:, None, None]


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
    batch of one runs fastest per image.
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


def augmented_batch(X: torch.Tensor, idx: Sequence[int], augment, seed: int) -> torch.Tensor:
    """Augmented, ImageNet-normalised float views of ``X[idx]`` (uint8 ``(N, 3, H, W)``),
    ``augment`` being a transform of one uint8 ``(3, H, W)`` image (such as
    :func:`avsep.vision.training.training_augmentation`); the draws are seeded by ``seed``,
    so a run is reproducible."""
    torch.manual_seed(seed)
    return torch.stack([(augment(X[j]).float() / 255 - _MEAN) / _STD for j in idx])


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
                x = augmented_batch(images, range(i, min(i + batch_size, len(images))), augment, seed + i)
            out.append(model.embed(x.to(device)).cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


def save_classifier(path: str | Path, model: nn.Module, *, backbone: str, label_names: Sequence[str],
                    input_size: int, **extra) -> None:
    """Save a classifier with what :func:`load_classifier` needs to rebuild it: a
    torchvision classifier, a :class:`~avsep.vision.backbones.FeatureClassifier` (its head
    type recorded under ``head``) or a :class:`~avsep.vision.regions.RegionClassifier`."""
    from avsep.files import save_torch
    from avsep.vision.regions import RegionClassifier  # regions builds on this module

    arch = {}
    if isinstance(model, RegionClassifier):
        arch = {"architecture": "regions", "head": "linear", "n_classes": model.n_classes}
    elif isinstance(model, FeatureClassifier):
        arch = {"architecture": "features", "head": "mlp" if isinstance(model.head, nn.Sequential) else "linear"}
    save_torch(path, {"state_dict": model.state_dict(), "backbone": backbone, "label_names": list(label_names),
                      "input_size": int(input_size), **arch, **extra})


def load_classifier(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a classifier saved by :func:`save_classifier`; returns ``(model, meta)``."""
    meta = torch.load(path, map_location="cpu", weights_only=False)
    if meta.get("architecture") == "regions":
        from avsep.vision.regions import RegionClassifier

        model = RegionClassifier(meta["backbone"], len(meta["label_names"]), pretrained=False)
    elif meta.get("architecture") == "features":
        # The weights are all in the checkpoint: no pretrained file is read.
        model = FeatureClassifier(meta["backbone"], len(meta["label_names"]), head=meta["head"], pretrained=False)
    else:
        model = build_classifier(meta["backbone"], len(meta["label_names"]))
    model.load_state_dict(meta["state_dict"])
    return model.to(device).eval(), meta
