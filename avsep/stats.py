"""Intervals for the numbers the reports print: percentile bootstrap intervals, seeded.

Sources of one mixture share its mixing and its vision errors, so the separation scores
resample whole mixtures (a cluster bootstrap, :func:`cluster_bootstrap`): the interval then
says how much the mean would move with other test mixtures drawn the same way. A paired
difference (:func:`paired_difference`) compares two methods source by source on the same
mixtures, which removes what the mixtures share, and is the interval to read before saying
that one method beats another.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["bootstrap_interval", "cluster_bootstrap", "paired_difference"]

N_BOOT = 2000
LEVEL = 0.95


def _quantiles(means: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap_interval(values: Sequence[float], *, n_boot: int = N_BOOT, level: float = LEVEL,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaNs dropped); NaN for none."""
    x = np.asarray(values, np.float64)
    x = x[np.isfinite(x)]
    if not len(x):
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    return _quantiles(x[rng.integers(0, len(x), (n_boot, len(x)))].mean(axis=1), level)


def cluster_bootstrap(values: Sequence[float], clusters: Sequence, *, n_boot: int = N_BOOT, level: float = LEVEL,
                      seed: int = 0) -> tuple[float, float, float]:
    """The mean of ``values`` (NaNs dropped) and its percentile bootstrap interval when
    whole ``clusters`` (one label per value: the mixture) are resampled.

    Returns:
        ``(mean, lo, hi)``; NaN for no finite value. One cluster gives a zero-width
        interval, which is what one mixture can say.
    """
    x = np.asarray(values, np.float64)
    c = np.asarray(clusters)
    if len(x) != len(c):
        raise ValueError(f"{len(x)} values but {len(c)} cluster labels")
    keep = np.isfinite(x)
    x, c = x[keep], c[keep]
    if not len(x):
        return float("nan"), float("nan"), float("nan")
    _, index = np.unique(c, return_inverse=True)
    sums = np.bincount(index, weights=x)
    counts = np.bincount(index).astype(np.float64)
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, len(sums), (n_boot, len(sums)))
    lo, hi = _quantiles(sums[draw].sum(axis=1) / counts[draw].sum(axis=1), level)
    return float(x.mean()), lo, hi


def paired_difference(table: pd.DataFrame, method: str, reference: str, metric: str = "sdr", *,
                      seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``method`` minus ``reference`` on ``metric``, source by source (rows paired on
    ``mix_id`` and ``instrument``), with its cluster-bootstrap interval over mixtures.

    Returns ``(mean, lo, hi)``; NaN when the two share no scored source.
    """
    def of(name):
        rows = table[table["method"] == name]
        return rows.set_index(["mix_id", "instrument"])[metric]

    a, b = of(method), of(reference)
    both = (a - b).dropna()
    if both.empty:
        return float("nan"), float("nan"), float("nan")
    return cluster_bootstrap(both.to_numpy(), both.index.get_level_values("mix_id").to_numpy(), seed=seed)
