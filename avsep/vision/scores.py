"""How well the vision stage named and placed the instruments of the test mixtures and
the duets, against the truth: the mixture plan for mixtures, and for duets the folder's
instruments with their sides from the dataset's box annotations when it has them.

Visual accuracy is the fraction of items whose two instruments are both named (as a set);
location accuracy the fraction of sources whose track sits on the source's true side.
Intervals are 95 % percentile bootstrap intervals over items, seeded.
:func:`score_records` scores every test mixture and duet; the rule ``evaluate_vision``
(:func:`avsep.vision.pipelines.evaluate_vision`) writes what it gives.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from avsep.stats import bootstrap_interval
from avsep.vision.annotations import read_annotations
from avsep.vision.labels import assign_audio_labels, assign_known_labels

__all__ = ["duet_true_sides", "score_vision", "score_records", "bootstrap_interval", "summarize_vision",
           "side_confusion"]


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


def _side_pairs(record: Mapping, sides: Mapping[str, str]) -> list[tuple[str, str]]:
    """(true instrument, the instrument the record places on its side) per source."""
    placed = dict(zip(record["positions"], record["instruments"]))
    return [(inst, placed.get(side, "")) for inst, side in sides.items()]


def score_records(records: Mapping[str, Mapping], plan: pd.DataFrame, manifest: pd.DataFrame,
                  annotations: Mapping[str, str], tags: Mapping[str, Mapping] | None = None,
                  ) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """Score the vision records of the test mixtures (truth from the mixture ``plan``) and
    of the manifest's duets (the folder's instruments; their sides from the duet's box
    annotations, when ``annotations`` maps its video id to a file). A duet is scored twice:
    as vision names it (``labels_from: vision``) and with the folder's labels placed by
    vision (``folder+vision``, :func:`avsep.vision.labels.assign_known_labels`). With
    ``tags``, every item they hold is scored once more with the instruments the audio names, placed by
    vision (``audio+vision``, :func:`avsep.vision.labels.assign_audio_labels`).

    Args:
        records: item (mixture or video id) -> its vision record.
        tags: item -> its audio tags (:func:`avsep.miml.predict.audio_tags`), or None.

    Returns:
        one row per item and ``labels_from`` (``item, kind, labels_from, truth`` and
        :func:`score_vision`'s columns), and the (true, predicted) instrument of each source
        whose side is known, for :func:`side_confusion`.
    """
    rows, pairs = [], []
    for mix in plan.itertuples():
        sides = {mix.left_instrument: "left", mix.right_instrument: "right"}
        record = records[mix.mix_id]
        truth = f"{mix.left_instrument}:left,{mix.right_instrument}:right"
        rows.append({"item": mix.mix_id, "kind": "mixture", "labels_from": "vision", "truth": truth,
                     **score_vision(record, list(sides), sides)})
        if tags and mix.mix_id in tags:
            rows.append({"item": mix.mix_id, "kind": "mixture", "labels_from": "audio+vision", "truth": truth,
                         **score_vision(assign_audio_labels(record, tags[mix.mix_id]), list(sides), sides)})
        pairs += _side_pairs(record, sides)
    # The test duets: the others train MIML, and vision labels them only for that.
    for duet in manifest[(manifest["kind"] == "duet") & (manifest["split"] == "test")].itertuples():
        labels = duet.labels.split(",")
        record = records[duet.video_id]
        sides = duet_true_sides(read_annotations(annotations[duet.video_id])) if duet.video_id in annotations else None
        truth = ",".join(f"{i}:{sides[i]}" for i in labels) if sides else ",".join(labels)
        placements = [("vision", record), ("folder+vision", assign_known_labels(record, labels))]
        if tags and duet.video_id in tags:
            placements.append(("audio+vision", assign_audio_labels(record, tags[duet.video_id])))
        for labels_from, placement in placements:
            rows.append({"item": duet.video_id, "kind": "duet", "labels_from": labels_from, "truth": truth,
                         **score_vision(placement, labels, sides)})
        if sides:
            pairs += _side_pairs(record, sides)
    return pd.DataFrame(rows), pairs


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
