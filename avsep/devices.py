"""Where models run, from the ``device`` setting a job is given (see avsep/jobs.py)."""

from __future__ import annotations

import logging

import torch

from avsep.errors import InputError

_log = logging.getLogger(__name__)


def pick_device(setting: str = "auto") -> str:
    """``auto``: CUDA when available, else CPU; ``cpu``; ``cuda`` (an error without a GPU).
    The choice is logged, so a job's log says where it ran."""
    if setting not in ("auto", "cpu", "cuda"):
        raise InputError(f"device must be auto, cpu or cuda, got {setting!r}")
    if setting == "cuda" and not torch.cuda.is_available():
        raise InputError("device: cuda was asked for, but torch sees no CUDA device; use auto or cpu")
    chosen = "cuda" if setting == "cuda" or (setting == "auto" and torch.cuda.is_available()) else "cpu"
    where = f"cuda ({torch.cuda.get_device_name()})" if chosen == "cuda" else "cpu"
    _log.info("device: %s (setting %s)", where, setting)
    return chosen
