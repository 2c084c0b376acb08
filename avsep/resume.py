"""Per-epoch training checkpoints that a killed job resumes from, ending as an
uninterrupted run would (MIML and the deep separator train this way).

A checkpoint holds the model, optimiser, scheduler, the shuffling generator's state and
torch's global RNG, with a fingerprint of the run's configuration and data: a checkpoint
of another run is ignored, never resumed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from avsep.files import save_torch

__all__ = ["save_training_state", "resume_training_state"]


def save_training_state(path: str | Path, fingerprint: str, model: torch.nn.Module, opt, sched,
                        gen: torch.Generator, **extra: Any) -> None:
    """Write the state after an epoch (atomically); ``extra``: what the loop keeps besides
    (its rows, the epoch, the best weights so far)."""
    save_torch(path, {"fingerprint": fingerprint, "model": model.state_dict(), "optimizer": opt.state_dict(),
                      "scheduler": sched.state_dict(), "generator": gen.get_state(),
                      "torch_rng": torch.get_rng_state(), **extra})


def resume_training_state(path: str | Path | None, fingerprint: str, model: torch.nn.Module, opt, sched,
                          gen: torch.Generator, *, device: str = "cpu", what: str = "training",
                          log: Callable[[str], None] | None = None) -> dict | None:
    """Load :func:`save_training_state`'s file into ``model``, ``opt``, ``sched``, ``gen``
    and torch's RNG when it exists and has ``fingerprint``; returns its ``extra`` then,
    else ``None`` (no file, or another run's: training starts afresh)."""
    if path is None or not Path(path).exists():
        return None
    state = torch.load(path, map_location=device, weights_only=False)
    if state.get("fingerprint") != fingerprint:
        if log:
            log(f"{path} is of another configuration or data: {what} starts afresh")
        return None
    model.load_state_dict(state.pop("model"))
    opt.load_state_dict(state.pop("optimizer"))
    sched.load_state_dict(state.pop("scheduler"))
    gen.set_state(state.pop("generator"))
    torch.set_rng_state(state.pop("torch_rng"))
    state.pop("fingerprint")
    if log:
        log(f"resuming {what} from {path} after epoch {state.get('epoch')}")
    return state
