"""The instrument boxes of a dataset: ``<dataset>/annotations/<video_id>.tsv``, one row per
player and annotated time, tab-separated ``time, instrument, x1, y1, x2, y2`` (seconds, and
pixels of the source video). The demo generator writes them, since it knows where it drew
each player.

The detector (:mod:`avsep.vision.detector`) and the region classifier
(:mod:`avsep.vision.regions`) train on them (:func:`frame_boxes`); the evaluation takes a
duet's true sides from them (:func:`avsep.vision.scores.duet_true_sides`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from avsep.errors import InputError

__all__ = ["ANNOTATION_COLUMNS", "read_annotations", "frame_boxes"]

ANNOTATION_COLUMNS = ["time", "instrument", "x1", "y1", "x2", "y2"]


def read_annotations(path: str | Path) -> pd.DataFrame:
    """Read a video's boxes: tab-separated ``time, instrument, x1, y1, x2, y2`` (seconds, and
    pixels of the source video); other columns, such as ``frame_index``, are ignored.

    Raises:
        InputError: the file is missing, lacks a column, or holds an empty box.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no box annotations (the detector trains on <dataset>/annotations/<video_id>.tsv)")
    table = pd.read_csv(path, sep="\t")
    missing = [c for c in ANNOTATION_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; expected {ANNOTATION_COLUMNS}")
    bad = table[(table["x2"] <= table["x1"]) | (table["y2"] <= table["y1"])]
    if len(bad):
        raise InputError(f"{path}: {len(bad)} empty box(es), first at time {bad['time'].iloc[0]}")
    return table[ANNOTATION_COLUMNS]


def frame_boxes(annotations: pd.DataFrame, timestamps: np.ndarray, *, scale: tuple[float, float],
                label_names: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The boxes of each sampled frame: the annotation rows at the nearest annotated time,
    scaled from source-video pixels to frame pixels by ``scale = (sx, sy)``.

    Returns:
        per frame, ``(boxes (n, 4) float32, class ids (n,) int64)``.

    Raises:
        InputError: an annotated instrument is not one of ``label_names``.
    """
    unknown = sorted(set(annotations["instrument"]) - set(label_names))
    if unknown:
        raise InputError(f"annotations name instrument(s) {unknown} outside the class list {list(label_names)}")
    times = np.unique(annotations["time"].to_numpy(float))
    out = []
    for t in np.asarray(timestamps, float):
        nearest = times[np.abs(times - t).argmin()]
        rows = annotations[annotations["time"] == nearest]
        boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float32) * np.array([*scale, *scale], np.float32)
        out.append((boxes, np.array([label_names.index(i) for i in rows["instrument"]], np.int64)))
    return out
