"""The weak labels of the MIML bags: which instruments each training video holds, by its
folder or by what the vision stage sees in it (Gao, Feris & Grauman 2018 label their
unlabeled videos with a visual classifier).

With ``miml.labels: vision`` a label must be honestly weak: a training solo that the vision
model trained on would be labelled in-sample, nearly always right. So the training solos
are labelled by cross-fitting (:func:`crossfit_folds`): k vision models, each trained
without one fold of the training solos, label that fold. Validation solos and multi-source
videos are never in vision's training set, and take the main model's records.
"""

from __future__ import annotations

import zlib
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

__all__ = ["crossfit_folds", "folder_labels", "weak_labels", "agreement_table"]


def folder_labels(manifest: pd.DataFrame, videos: Sequence[str]) -> dict[str, list[str]]:
    """The instruments each video's folder names: one for a solo, two for a duet."""
    labels = dict(zip(manifest["video_id"], manifest["labels"]))
    return {v: labels[v].split(",") for v in videos}


def crossfit_folds(videos: Sequence[str], labels: Mapping[str, str], k: int, seed: int) -> dict[str, int]:
    """Fold ``0..k-1`` of each training solo, dealt per instrument in a seeded order, so that
    every fold model still sees every instrument with at least ``k - 1`` videos.

    Raises:
        ValueError: ``k`` under 2, or an instrument with fewer than ``k`` training videos
            (its fold model would not know it).
    """
    if k < 2:
        raise ValueError(f"miml.vision_folds must be at least 2, got {k}")
    by_label: dict[str, list[str]] = {}
    for v in sorted(videos):
        by_label.setdefault(labels[v], []).append(v)
    few = {lab: len(vs) for lab, vs in by_label.items() if len(vs) < k}
    if few:
        raise ValueError(f"miml.vision_folds: {k} folds need {k} training solos of every instrument; "
                         f"{', '.join(f'{lab} has {n}' for lab, n in sorted(few.items()))}: lower vision_folds")
    fold = {}
    for lab, vs in sorted(by_label.items()):
        order = np.random.default_rng([seed, zlib.crc32(lab.encode())]).permutation(len(vs))
        for rank, i in enumerate(order):
            fold[vs[i]] = rank % k
    return fold


def weak_labels(manifest: pd.DataFrame, videos: Sequence[str], mode: str,
                records: Mapping[str, Mapping] | None = None) -> tuple[dict[str, list[str]], pd.DataFrame]:
    """Each video's weak labels, and a table of where they came from.

    Args:
        mode: ``folder`` (the folder names) or ``vision``.
        records: with ``vision``, video id -> a record holding ``present`` (the instruments
            vision sees) and optionally ``source`` (``crossfit`` or ``vision``).

    Returns:
        video id -> sorted labels, and one row per video: ``video_id, kind, split, folder,
        weak, source, agree`` (the weak labels equal the folder's).

    Raises:
        ValueError: a video without a record, or a record that sees nothing.
    """
    folder = folder_labels(manifest, videos)
    rows = manifest.set_index("video_id")
    out, table = {}, []
    for v in videos:
        if mode == "folder":
            weak, source = sorted(folder[v]), "folder"
        else:
            if records is None or v not in records:
                raise ValueError(f"miml.labels: vision, and {v} has no vision record")
            weak, source = sorted(records[v]["present"]), records[v].get("source", "vision")
            if not weak:
                raise ValueError(f"miml.labels: vision, and vision sees no instrument in {v}; lower "
                                 "vision.present_threshold or use miml.labels: folder")
        out[v] = weak
        table.append({"video_id": v, "kind": rows.at[v, "kind"], "split": rows.at[v, "split"],
                      "folder": ",".join(sorted(folder[v])), "weak": ",".join(weak), "source": source,
                      "agree": weak == sorted(folder[v])})
    return out, pd.DataFrame(table, columns=["video_id", "kind", "split", "folder", "weak", "source", "agree"])


def agreement_table(table: pd.DataFrame) -> pd.DataFrame:
    """How often the weak labels equal the folders', per kind, split and source of label."""
    if table.empty:
        return pd.DataFrame(columns=["kind", "split", "source", "videos", "agree", "agree_fraction"])
    g = table.groupby(["kind", "split", "source"], sort=True)["agree"]
    out = pd.DataFrame({"videos": g.size(), "agree": g.sum().astype(int)}).reset_index()
    out["agree_fraction"] = (out["agree"] / out["videos"]).round(3)
    return out
