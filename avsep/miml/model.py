"""The deep MIML network of Gao, Feris & Grauman (ECCV 2018, Sec. 3.2), its configuration,
and saving and loading it.

A bag is the M NMF bases of one audio chunk, each max-normalized; its labels are weak
(the instrument folder, or what the vision stage saw). The network never learns which
basis is which instrument, only which instruments the bag holds:

    bases (B, M, F) -> per-basis MLP, shared over the M bases -> sub-concepts (B, M, L, K)
      -> max over K, softmax over L: the basis x label relation map (B, M, L)
      -> max over M: the bag's label scores (B, L), trained with a multi-label loss
         (binary cross-entropy per label).

The softmax makes each basis share one unit of belief among the labels. A label absent
from a bag must score low on every basis, so each basis's belief flows to the bag's own
labels: the relation map then says which of a bag's instruments each basis belongs to,
which is what stage 5 reads to find each instrument's key bases. (Without it, max pooling
constrains only the best basis per label and the map is uninformative for the others.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from avsep.files import FORMAT_VERSION, save_torch

__all__ = ["MIMLConfig", "MIMLNet", "save_model", "load_model"]


@dataclasses.dataclass(frozen=True)
class MIMLConfig:
    """The ``miml`` block of the config."""

    labels: str = "folder"
    hidden: tuple[int, ...] = (512, 256)
    dropout: float = 0.3
    sub_concepts: int = 8
    epochs: int = 60
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    lr_schedule: str = "cosine"
    seed: int = 0
    threshold: float = 0.5
    select_margin: float = 0.2
    train_on: str = "all"
    solo_excluded: tuple[str, ...] = ()
    vision_folds: int = 3

    @classmethod
    def from_config(cls, cfg: dict) -> "MIMLConfig":
        return cls(**{**cfg, "hidden": tuple(cfg.get("hidden", cls.hidden)),
                      "solo_excluded": tuple(cfg.get("solo_excluded", ()))})


class MIMLNet(nn.Module):
    """The deep MIML network.

    Args:
        n_bins: F, the length of a basis.
        n_labels: L.
        hidden: widths of the per-basis MLP (depth = len(hidden)).
        sub_concepts: K sub-concepts per label.
        dropout: dropout after each hidden layer.
    """

    def __init__(self, n_bins: int, n_labels: int, hidden: Sequence[int] = (512, 256), sub_concepts: int = 8,
                 dropout: float = 0.3):
        super().__init__()
        layers, width = [], n_bins
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU(inplace=True)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.basis_mlp = nn.Sequential(*layers)
        self.sub_concepts = nn.Linear(width, n_labels * sub_concepts)
        self.n_labels, self.K = n_labels, sub_concepts

    def forward(self, bags: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            bags: ``(nb_bags, M, F)``.

        Returns:
            scores: ``(nb_bags, L)`` bag label probabilities.
            relation: ``(nb_bags, M, L)`` basis x label relation map (each row sums to one).
        """
        B, M, F = bags.shape
        h = self.basis_mlp(bags.reshape(B * M, F))
        sub = self.sub_concepts(h).reshape(B, M, self.n_labels, self.K)
        relation = torch.softmax(sub.amax(dim=3), dim=2)
        return relation.amax(dim=1), relation


def save_model(path: str | Path, model: MIMLNet, cfg: MIMLConfig, label_names: Sequence[str], **extra) -> None:
    """Save weights with everything needed to rebuild the network."""
    save_torch(
        path,
        {
            "format_version": FORMAT_VERSION,
            "state_dict": model.state_dict(),
            "n_bins": model.basis_mlp[0].in_features if len(model.basis_mlp) else model.sub_concepts.in_features,
            "label_names": list(label_names),
            "config": dataclasses.asdict(cfg),
            **extra,
        },
    )


def load_model(path: str | Path, device: str = "cpu") -> tuple[MIMLNet, dict]:
    """Rebuild a network saved by :func:`save_model`; returns ``(model in eval mode, meta)``."""
    meta = torch.load(path, map_location=device, weights_only=False)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: MIML checkpoint format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    cfg = MIMLConfig.from_config(meta["config"])
    model = MIMLNet(meta["n_bins"], len(meta["label_names"]), cfg.hidden, cfg.sub_concepts, cfg.dropout)
    model.load_state_dict(meta["state_dict"])
    return model.to(device).eval(), meta
