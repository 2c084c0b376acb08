"""How well the vision stage named and placed the instruments of the test mixtures and
the duets, against the truth: the mixture plan for mixtures, and for duets the folder's
instruments with their sides from the dataset's box annotations when it has them.

Visual accuracy is the fraction of items whose two instruments are both named (as a set);
location accuracy the fraction of sources whose track sits on the source's true side.
Intervals are 95 % percentile bootstrap intervals over items, seeded.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from avsep.stats import bootstrap_interval

__all__ = ["duet_true_sides", "score_vision", "bootstrap_interval", "summarize_vision", "side_confusion"]


def duet_true_sides(annotations: pd.DataFrame) -> dict[str, str]:
    """Each instrument's side in a two-player video, from its boxes (columns ``instrument,
    x1, x2``): the instrument whose mean box centre is further left is ``left``."""
    centres = ((annotations["x1"] + annotations["x2"]) / 2).groupby(annotations["instrument"]).mean()
    if len(centres) != 2:
        raise ValueError(f"two-player annotations name {len(centres)} instruments: {sorted(centres.index)}")
    left = centres.idxmin()
    return {inst: "left" if inst == left else "right" for inst in centres.index}


def score_vision(record: Mapping, truth: Sequence[str], true_sides: Mapping[str, str] | None) -> dict:
    """Score one vision record (or placement) against the item's true instruments.

    Args:
        record: ``{"instruments", "positions"}`` and optionally ``uncertain``.
        truth: the item's true instruments.
        true_sides: instrument -> ``left``/``right``; ``None`` when not known (location is
            then NaN).

    Returns:
        ``{"predicted", "visual_correct", "location_acc", "uncertain"}``.
    """
    side_of = dict(zip(record["instruments"], record["positions"]))
    visual = float(set(record["instruments"]) == set(truth))
    location = (float(np.mean([side_of.get(inst) == side for inst, side in true_sides.items()]))
                if true_sides else float("nan"))
    predicted = ",".join(f"{inst}:{pos}" for inst, pos in side_of.items())
    return {"predicted": predicted, "visual_correct": visual, "location_acc": location,
            "uncertain": bool(record.get("uncertain", False))}


def summarize_vision(rows: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Per ``kind`` (mixture, duet) and ``labels_from``: items, visual and location
    accuracy with their bootstrap intervals, and how many records were uncertain."""
    out = []
    for (kind, labels_from), group in rows.groupby(["kind", "labels_from"], sort=True):
        entry = {"kind": kind, "labels_from": labels_from, "items": len(group)}
        for column, name in (("visual_correct", "visual_acc"), ("location_acc", "location_acc")):
            values = group[column].to_numpy(np.float64)
            lo, hi = bootstrap_interval(values, seed=seed)
            entry.update({name: np.nanmean(values) if np.isfinite(values).any() else np.nan,
                          f"{name}_lo": lo, f"{name}_hi": hi})
        entry["uncertain"] = int(group["uncertain"].sum())
        out.append(entry)
    return pd.DataFrame(out).round(3)


def side_confusion(pairs: Sequence[tuple[str, str]], names: Sequence[str]) -> np.ndarray:
    """Counts ``(n + 1, n + 1)`` (n = ``len(names)``) of (true, predicted) instruments per
    source, rows true; the last row and column count instruments outside ``names``."""
    index = {n: k for k, n in enumerate(names)}
    cm = np.zeros((len(names) + 1, len(names) + 1), int)
    for true, pred in pairs:
        cm[index.get(true, len(names)), index.get(pred, len(names))] += 1
    return cm
