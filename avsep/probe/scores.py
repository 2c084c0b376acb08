"""The probe's accuracy: on clips of known features (:func:`probe_accuracy`,
:func:`probe_confusion`), and on every kind of input (:func:`probe_accuracy_table`): the test
solo clips (the ceiling), the mixtures (the floor: one instrument of two is the best a single
label can do), the ideal ratio mask's tracks and every method's tracks.

Inputs are scored clip by clip (:data:`avsep.probe.features.CLIP_SECONDS`): a clip is right
when the probe names the instrument it should hold (:func:`avsep.probe.predict.predict_clips`).
Intervals are cluster-bootstrap intervals over items (a solo video, a mixture;
:func:`avsep.stats.cluster_bootstrap`), since clips of one item share its recording.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from avsep.errors import InputError
from avsep.probe.model import Probe, _labels
from avsep.stats import cluster_bootstrap

__all__ = ["probe_accuracy", "probe_confusion", "input_order", "probe_accuracy_table", "confusion_panels"]


def _label_indices(probe: Probe, y: Sequence, n: int) -> np.ndarray:
    y = _labels(y, n, "y")
    index = {name: i for i, name in enumerate(probe.label_names)}
    unknown = sorted(str(v) for v in set(y) - set(index))
    if unknown:
        raise InputError(f"labels {unknown} are not among the probe's classes {probe.label_names}")
    return np.array([index[v] for v in y], dtype=np.int64)


def probe_accuracy(probe: Probe, X: np.ndarray, y: Sequence) -> float:
    """Fraction of clips ``X`` ``(nb_clips, D)`` whose predicted label is ``y``."""
    true = _label_indices(probe, y, len(X))
    if not len(true):
        return float("nan")
    return float((probe.predict_proba(X).argmax(axis=1) == true).mean())


def probe_confusion(probe: Probe, X: np.ndarray, y: Sequence) -> np.ndarray:
    """``(L, L)`` counts of clips, rows the true label and columns the predicted one, both in
    the order of ``probe.label_names``."""
    from avsep.vision.training import confusion_matrix

    true = _label_indices(probe, y, len(X))
    pred = probe.predict_proba(X).argmax(axis=1) if len(true) else np.zeros(0, np.int64)
    return confusion_matrix(true, pred, len(probe.label_names))


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


def confusion_panels(predictions: pd.DataFrame, probe: Probe, name: str,
                     inputs: Iterable[str]) -> list[tuple[np.ndarray, str]]:
    """The confusions of one probe on the clips of each of ``inputs`` that it named (rows of
    :func:`avsep.probe.predict.predict_clips`), titled with its accuracy: the panels of
    :func:`avsep.report.plots.plot_confusions`, in the order of ``probe.label_names``.

    Args:
        name: the probe's name in the titles (``<feature>_<kind>``).
        inputs: the inputs, each once, in order; one without clips has no panel.
    """
    from avsep.vision.training import confusion_matrix

    index = {n: k for k, n in enumerate(probe.label_names)}
    panels = []
    for input_name in dict.fromkeys(inputs):
        rows = predictions[(predictions["feature"] == probe.feature) & (predictions["probe"] == probe.kind)
                           & (predictions["input"] == input_name)]
        if len(rows):
            cm = confusion_matrix(rows["instrument"].map(index).to_numpy(), rows["predicted"].map(index).to_numpy(),
                                  len(index))
            panels.append((cm, f"{name} on {input_name} clips, accuracy {rows['correct'].mean():.3f}"))
    return panels
