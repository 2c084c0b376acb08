"""The audio probe's accuracy on every kind of input: the test solo clips (the ceiling), the
mixtures (the floor: one instrument of two is the best a single label can do), the ideal
ratio mask's tracks and every method's tracks.

Inputs are scored clip by clip (:data:`avsep.probe.CLIP_SECONDS`): a clip is right when the
probe names the instrument it should hold. A clip whose true stem is silent holds no
instrument and is left out. Intervals are cluster-bootstrap intervals over items (a solo
video, a mixture; :func:`avsep.stats.cluster_bootstrap`), since clips of one item share its
recording.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from avsep.probe import Probe, clip_levels_db, track_features
from avsep.stats import cluster_bootstrap

__all__ = ["PREDICTION_COLUMNS", "predict_clips", "probe_accuracy_table", "input_order"]

PREDICTION_COLUMNS = ["feature", "probe", "input", "item", "instrument", "clip", "predicted", "correct"]


def predict_clips(probes: Mapping[str, Probe], tracks: Iterable[tuple], sample_rate: int, *, silence_db: float,
                  miml: tuple | None = None, device: str = "cpu") -> pd.DataFrame:
    """Every probe's label for every audible clip of every track.

    Args:
        probes: name (``<feature>_<kind>``) -> probe.
        tracks: ``(input, item, instrument, audio, reference)``: which input it is (``solo``,
            ``mixture``, a method), the item, the instrument it should hold, its audio, and
            the true stem whose silent clips are left out (``None``: the audio itself).
        miml: ``(model, stft_cfg, nmf_cfg)`` for probes on the ``miml`` feature.

    Returns:
        One row per probe and clip, :data:`PREDICTION_COLUMNS`.
    """
    rows = []
    seconds = {p.feature: float(p.feature_params.get("clip_seconds", 5.0)) for p in probes.values()}
    for input_name, item, instrument, audio, reference in tracks:
        # Per feature, once per track: its clips' features, and which clips are audible.
        features = {f: track_features(f, audio, sample_rate, seconds=s, miml=miml, device=device)
                    for f, s in seconds.items()}
        audible_of = {f: clip_levels_db(audio if reference is None else reference, sample_rate, s)[: len(features[f])]
                      > silence_db for f, s in seconds.items()}
        for probe in probes.values():
            X, audible = features[probe.feature], audible_of[probe.feature]
            if not audible.any():
                continue
            predicted = probe.predict(X[audible])
            for clip, label in zip(np.flatnonzero(audible), predicted):
                rows.append({"feature": probe.feature, "probe": probe.kind, "input": input_name, "item": item,
                             "instrument": instrument, "clip": int(clip), "predicted": str(label),
                             "correct": str(label) == instrument})
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


def input_order(inputs: Iterable[str], methods: Iterable[str]) -> list[str]:
    """Inputs from the ceiling to the floor: solo clips, then the methods in config order,
    the mixture last."""
    inputs = list(dict.fromkeys(inputs))
    order = [i for i in ["solo", *[m for m in methods if m != "mixture"], "mixture"] if i in inputs]
    return order + [i for i in inputs if i not in order]


def probe_accuracy_table(predictions: pd.DataFrame, methods: Iterable[str] = (), *, seed: int = 0) -> pd.DataFrame:
    """Accuracy per feature, probe and input with its 95 % interval over items: columns
    ``feature, probe, input, clips, items, acc, acc_lo, acc_hi``."""
    rows = []
    for (feature, kind, input_name), group in predictions.groupby(["feature", "probe", "input"], sort=False):
        acc, lo, hi = cluster_bootstrap(group["correct"].astype(float), group["item"], seed=seed)
        rows.append({"feature": feature, "probe": kind, "input": input_name, "clips": len(group),
                     "items": group["item"].nunique(), "acc": acc, "acc_lo": lo, "acc_hi": hi})
    table = pd.DataFrame(rows, columns=["feature", "probe", "input", "clips", "items", "acc", "acc_lo", "acc_hi"])
    if table.empty:
        return table
    order = {name: k for k, name in enumerate(input_order(table["input"], methods))}
    table = table.sort_values(["feature", "probe", "input"], key=lambda c: c.map(order) if c.name == "input" else c)
    return table.round(3).reset_index(drop=True)
