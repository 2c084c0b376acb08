"""How well the MIML network labels bags: the fraction of bags labelled exactly right, and
the mean average precision over labels."""

from __future__ import annotations

import numpy as np

__all__ = ["bag_accuracy", "mean_average_precision"]


def bag_accuracy(scores: np.ndarray, targets: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of bags whose labels are all right. Single-label bags: the top score is the
    label. Multi-label bags: exactly the labels whose score (probability) passes
    ``threshold``."""
    single = targets.sum(axis=1) == 1
    correct = np.zeros(len(targets), bool)
    correct[single] = targets[single, scores[single].argmax(axis=1)] == 1
    multi = ~single
    if multi.any():
        correct[multi] = ((scores[multi] >= threshold) == (targets[multi] == 1)).all(axis=1)
    return float(correct.mean()) if len(correct) else float("nan")


def mean_average_precision(scores: np.ndarray, targets: np.ndarray) -> float:
    """Mean over labels (with at least one positive) of the average precision."""
    aps = []
    for l in range(targets.shape[1]):
        pos = targets[:, l] == 1
        if not pos.any():
            continue
        order = np.argsort(-scores[:, l], kind="stable")
        hits = pos[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float(precision[hits].mean()))
    return float(np.mean(aps)) if aps else float("nan")
