"""The MIML network's bags: the M max-normalized NMF bases of one audio chunk with the weak
labels of its video (Gao, Feris & Grauman, ECCV 2018, Sec. 3.2), built from the videos'
bases and written to and read from HDF5.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from avsep.files import FORMAT_VERSION, atomic_path, check_cache

__all__ = ["Bags", "normalize_bases", "build_bags", "write_bags", "read_bags"]


def normalize_bases(W: np.ndarray) -> np.ndarray:
    """Bags from bases: ``(nb_chunks, F, M)`` to ``(nb_chunks, M, F)``, each basis divided by
    its maximum (as in the reference implementation), so loudness does not matter."""
    bags = np.transpose(W, (0, 2, 1)).astype(np.float32)
    peak = bags.max(axis=2, keepdims=True)
    return bags / np.maximum(peak, 1e-12)


@dataclasses.dataclass
class Bags:
    """Training or validation bags.

    Attributes:
        bags: ``(N, M, F)`` max-normalized bases.
        targets: ``(N, L)`` 0/1 weak labels.
        label_names: the L instrument names, in target order.
        video_id, chunk: ``(N,)`` where each bag came from.
    """

    bags: np.ndarray
    targets: np.ndarray
    label_names: list[str]
    video_id: np.ndarray
    chunk: np.ndarray


def write_bags(path: str | Path, bags: Bags, params: dict) -> None:
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("bags", data=bags.bags, chunks=(1, *bags.bags.shape[1:]) if len(bags.bags) else None,
                              track_times=False)
            h5.create_dataset("targets", data=bags.targets, track_times=False)
            h5.create_dataset("video_id", data=bags.video_id.astype("S"), track_times=False)
            h5.create_dataset("chunk", data=bags.chunk, track_times=False)
            h5.attrs["label_names"] = ",".join(bags.label_names)
            h5.attrs["format_version"] = FORMAT_VERSION
            for k, v in sorted(params.items()):
                h5.attrs[k] = v


def read_bags(path: str | Path, expect: dict | None = None) -> Bags:
    """Read a bags file, checking its format version and, with ``expect``, its parameters
    (:class:`avsep.files.CacheError` otherwise)."""
    with h5py.File(path, "r") as h5:
        check_cache(path, dict(h5.attrs), expect, kind="MIML bags")
        return Bags(
            bags=h5["bags"][()],
            targets=h5["targets"][()],
            label_names=str(h5.attrs["label_names"]).split(","),
            video_id=h5["video_id"][()].astype(str),
            chunk=h5["chunk"][()],
        )


def build_bags(
    files: Sequence[tuple[str, np.ndarray, np.ndarray]], labels: dict[str, Sequence[str]], label_names: Sequence[str]
) -> Bags:
    """Bags of the active chunks of videos.

    Args:
        files: ``(video_id, W (C, F, M), active (C,))`` per video.
        labels: video_id -> its weak labels.
        label_names: the label order of the targets.
    """
    index = {name: i for i, name in enumerate(label_names)}
    bags, targets, vids, chunks = [], [], [], []
    for video_id, W, active in files:
        unknown = [lab for lab in labels[video_id] if lab not in index]
        if unknown:
            raise ValueError(f"{video_id}: labels {unknown} are not among {list(label_names)}")
        for c in np.flatnonzero(active):
            bags.append(normalize_bases(W[c : c + 1])[0])
            t = np.zeros(len(label_names), np.float32)
            t[[index[lab] for lab in labels[video_id]]] = 1
            targets.append(t)
            vids.append(video_id)
            chunks.append(c)
    F = files[0][1].shape[1] if files else 0
    M = files[0][1].shape[2] if files else 0
    return Bags(
        bags=np.stack(bags) if bags else np.zeros((0, M, F), np.float32),
        targets=np.stack(targets) if targets else np.zeros((0, len(label_names)), np.float32),
        label_names=list(label_names),
        video_id=np.array(vids),
        chunk=np.array(chunks, dtype=np.int64),
    )
