"""The probe: standardised clip features to instrument probabilities, by one linear layer or
a 3-layer MLP (as in the AudioSep downstream protocol); saved as a torch file of plain
values and read back."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from avsep.errors import InputError

__all__ = ["MLP_HIDDEN", "PROBE_KINDS", "Probe", "load_probe"]

#: Hidden width of the ``mlp`` probe (as in the AudioSep downstream protocol).
MLP_HIDDEN = 256

PROBE_KINDS = ("linear", "mlp")

#: Bump when the layout of a saved probe changes.
PROBE_FORMAT = 1


def _build_module(kind: str, n_features: int, n_classes: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(n_features, n_classes)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(n_features, MLP_HIDDEN), nn.ReLU(), nn.Linear(MLP_HIDDEN, MLP_HIDDEN),
                             nn.ReLU(), nn.Linear(MLP_HIDDEN, n_classes))
    raise InputError(f"probe kind must be one of {PROBE_KINDS}, got {kind!r}")


@dataclasses.dataclass
class Probe:
    """A trained probe.

    Attributes:
        kind: ``linear`` or ``mlp``.
        feature: the name of the feature it reads (e.g. ``logmel``, ``miml``).
        label_names: the L classes, in the column order of :meth:`predict_proba`.
        mean, scale: ``(D,)`` the standardisation fitted on the training clips.
        module: the classifier (eval mode), standardised features to logits.
        history: one row per epoch: ``epoch, loss, train_acc, val_acc, val_loss, selected``.
        seed: the training seed.
        feature_params: how the features were computed (sample rate, clip length, mel
            settings...), so that a user of a saved probe can compute the same.
    """

    kind: str
    feature: str
    label_names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    module: nn.Module
    history: list[dict]
    seed: int = 0
    feature_params: dict = dataclasses.field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.mean)

    @property
    def best_epoch(self) -> int:
        """The (1-based) epoch whose weights were kept."""
        return next(row["epoch"] for row in self.history if row["selected"])

    def _standardize(self, X: np.ndarray) -> torch.Tensor:
        X = _features(X, "X")
        if X.shape[1] != self.n_features:
            raise InputError(f"the probe reads {self.n_features} {self.feature} features per clip, "
                             f"got {X.shape[1]}")
        return torch.from_numpy(((X - self.mean) / self.scale).astype(np.float32))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(nb_clips, L)`` of features ``X`` ``(nb_clips, D)``."""
        self.module.eval()
        with torch.no_grad():
            return torch.softmax(self.module(self._standardize(X)), dim=1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most likely label of every clip: ``(nb_clips,)`` strings."""
        return np.asarray(self.label_names)[self.predict_proba(X).argmax(axis=1)]

    def save(self, path: str | Path) -> None:
        """Write the probe atomically as a torch file holding a plain dict (tensors and
        Python values only, readable with ``torch.load(weights_only=True)``)."""
        from avsep.files import save_torch

        save_torch(path, {
            "probe_format": PROBE_FORMAT,
            "kind": self.kind,
            "feature": self.feature,
            "label_names": list(self.label_names),
            "n_features": self.n_features,
            "mean": torch.from_numpy(np.asarray(self.mean, np.float64)),
            "scale": torch.from_numpy(np.asarray(self.scale, np.float64)),
            "state_dict": self.module.state_dict(),
            "history": [dict(row) for row in self.history],
            "seed": int(self.seed),
            "feature_params": {k: v.item() if isinstance(v, np.generic) else v
                               for k, v in sorted(self.feature_params.items())},
        })


def load_probe(path: str | Path) -> Probe:
    """Read a probe written by :meth:`Probe.save`."""
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise InputError(f"{path}: not a readable probe file ({str(err).splitlines()[0]})") from None
    if not isinstance(meta, dict) or meta.get("probe_format") != PROBE_FORMAT:
        found = meta.get("probe_format") if isinstance(meta, dict) else type(meta).__name__
        raise InputError(f"{path}: not a probe of format {PROBE_FORMAT} (found {found!r})")
    module = _build_module(meta["kind"], meta["n_features"], len(meta["label_names"]))
    module.load_state_dict(meta["state_dict"])
    return Probe(kind=meta["kind"], feature=meta["feature"], label_names=list(meta["label_names"]),
                 mean=meta["mean"].numpy(), scale=meta["scale"].numpy(), module=module.eval(),
                 history=list(meta["history"]), seed=meta["seed"], feature_params=dict(meta["feature_params"]))


def _features(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(f"{name} must be (nb_clips, nb_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise InputError(f"{name} holds NaN or Inf features in {len(rows)} clip(s), first at row {rows[0]}")
    return X


def _labels(y: Sequence, n: int, name: str) -> np.ndarray:
    y = np.asarray(y).astype(str)
    if y.ndim != 1 or len(y) != n:
        raise InputError(f"{name} has {len(y)} labels for {n} clips; give one label per clip")
    return y
