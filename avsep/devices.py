"""Where models run, from the ``device`` config key."""

from __future__ import annotations

import torch

from avsep.errors import InputError


def pick_device(setting: str = "auto") -> str:
    """``auto``: CUDA when available, else CPU; ``cpu``; ``cuda`` (an error without a GPU)."""
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise InputError("device: cuda was asked for, but torch sees no CUDA device; use auto or cpu")
    if setting not in ("cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda, got {setting!r}")
    return setting
