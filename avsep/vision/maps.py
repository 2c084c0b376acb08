"""Localization maps from what vision sees: the whole frame through the vision model's
backbone, and the ``cam`` and baseline maps built on it.

- **The whole frame, not its halves.** A frame of a mixture or duet (two players) is resized
  to ``input_size`` x ``2 * input_size``, so that each half is seen at the scale the
  classifier was trained at (one solo frame, ``input_size`` square); a solo frame to
  ``input_size`` square. The backbone is fully convolutional, so one pass gives the feature
  map of the whole frame (:func:`feature_maps`).
- **``cam``: class activation maps** (CAM, Zhou et al. 2016): the classifier's linear head
  applied at every cell of the last feature map, which is exact for a linear head on
  average-pooled features. The region classifier (:mod:`avsep.vision.regions`) has a
  background class, so a softmax over its classes at each cell is the probability that the
  cell shows each instrument; a whole-frame linear head has none, and its softmax shares
  every cell among the instruments. The cell logits are upsampled bilinearly to the
  frame's pixels before the softmax. Heads that are not linear (``vision.head: mlp``) and
  torchvision classifiers would need Grad-CAM, which avsep does not implement; they are a
  clear error.
- **Baselines**: ``whole`` (every pixel 1) and ``center`` (a centred Gaussian,
  :func:`avsep.localization.center_map`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from avsep.errors import InputError
from avsep.vision.backbones import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["BASELINES", "input_shape", "feature_maps", "has_cam", "cam_maps", "baseline_maps", "upsampled"]

#: The maps that need no model.
BASELINES = ("whole", "center")

_MEAN = torch.tensor(IMAGENET_MEAN)[:, None, None]
_STD = torch.tensor(IMAGENET_STD)[:, None, None]


def input_shape(input_size: int, two_players: bool) -> tuple[int, int]:
    """The ``(height, width)`` a frame is resized to (see the module)."""
    return (input_size, 2 * input_size) if two_players else (input_size, input_size)


def _batch(images: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    t = F.interpolate(t, size=shape, mode="bilinear", align_corners=False, antialias=True)
    return (t - _MEAN) / _STD


def has_cam(model) -> bool:
    """Whether ``model`` is a classifier whose class activation maps avsep computes: a
    linear head on an EfficientNet feature map."""
    from torch import nn

    return (hasattr(model, "features") and hasattr(model.features, "feature_maps")
            and isinstance(getattr(model, "head", None), nn.Linear))


def feature_maps(model, frames: np.ndarray, *, input_size: int, two_players: bool, device: str = "cpu",
                 batch_size: int = 1) -> torch.Tensor:
    """The backbone's last feature maps ``(n, D, h, w)`` of whole frames (uint8
    ``(n, H, W, 3)``), without gradients, on the CPU."""
    if not has_cam(model) and not (hasattr(model, "features") and hasattr(model.features, "feature_maps")):
        raise InputError("localization needs a vision model with a convolutional feature map "
                         "(an efficientnet backbone, vision.method: halves)")
    shape = input_shape(input_size, two_players)
    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            x = _batch(frames[i : i + batch_size], shape).to(device)
            out.append(model.features.feature_maps(x * model.in_scale + model.in_shift).cpu())
    return torch.cat(out) if out else torch.zeros(0)


def upsampled(cells: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Cell values ``(n, K, h, w)`` bilinearly upsampled to ``(n, K, height, width)``."""
    return F.interpolate(cells, size=(height, width), mode="bilinear", align_corners=False)


def cam_maps(model, maps: torch.Tensor, n_instruments: int, *, height: int, width: int) -> np.ndarray:
    """``cam`` maps ``(n, n_instruments, height, width)`` float32 in [0, 1] from feature maps
    (see the module).

    Raises:
        InputError: the model's head is not linear (Grad-CAM is not implemented).
    """
    if not has_cam(model):
        raise InputError("localization method cam needs a linear head on an efficientnet backbone "
                         "(vision.head: linear); it does not compute Grad-CAM for other classifiers")
    weight, bias = model.head.weight.detach().cpu(), model.head.bias.detach().cpu()
    out = []
    with torch.no_grad():
        for m in maps:
            logits = torch.einsum("dhw,cd->chw", m, weight) + bias[:, None, None]
            probs = torch.softmax(upsampled(logits[None], height, width)[0], dim=0)
            out.append(probs[:n_instruments].numpy())
    return np.stack(out).astype(np.float32) if out else np.zeros((0, n_instruments, height, width), np.float32)


def baseline_maps(method: str, n_frames: int, n_instruments: int, *, height: int, width: int,
                  sigma: float = 0.25) -> np.ndarray:
    """A baseline's maps ``(n_frames, n_instruments, height, width)``: ``whole`` or ``center``."""
    from avsep.localization import center_map

    if method == "whole":
        one = np.ones((height, width), np.float32)
    elif method == "center":
        one = center_map(height, width, sigma)
    else:
        raise InputError(f"baseline localization maps are {BASELINES}, got {method!r}")
    return np.broadcast_to(one, (n_frames, n_instruments, height, width)).copy()

