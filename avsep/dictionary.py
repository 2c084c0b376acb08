"""Stage 5, basis selection: per-instrument basis dictionaries.

The ``oracle`` dictionary of an instrument pools the bases of that instrument's
training-split solo videos (labels from the folder names). The ``miml`` dictionary
keeps the bases the MIML network ties to the instrument. Either way a cap,
``max_bases``, is filled by one of:

- ``kmeans``: spherical k-means centroids of the unit-norm bases (the default: it keeps the
  variety of the pool, which matters because guided NMF can only explain the mixture with
  what the dictionary holds);
- ``top``: the bases with the highest score: for ``oracle`` the energy they carry in their
  chunk, for ``miml`` the network's confidence;
- ``random``: a seeded random subset.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from avsep.files import FORMAT_VERSION, atomic_path, check_cache

__all__ = [
    "Dictionary",
    "REDUCTIONS",
    "pool_bases",
    "reduce_bases",
    "select_key_bases",
    "write_dictionaries",
    "read_dictionaries",
]

REDUCTIONS = ("kmeans", "top", "random")


@dataclasses.dataclass
class Dictionary:
    """One instrument's dictionary.

    Attributes:
        W: ``(nb_bins, K)`` non-negative unit-L2 bases.
        video_id: ``(K,)`` source video of each basis ("" for a k-means centroid, whose
            nearest pooled basis is named by ``chunk``/``component`` of its nearest member).
        chunk, component: ``(K,)`` chunk and basis index within the source video.
        score: ``(K,)`` the selection score (energy, MIML score, or cluster size).
    """

    W: np.ndarray
    video_id: np.ndarray
    chunk: np.ndarray
    component: np.ndarray
    score: np.ndarray


def pool_bases(files: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> Dictionary:
    """Pool the bases of active chunks.

    Args:
        files: ``(video_id, W (C, F, M), active (C,), basis_energy (C, M))`` per video.
    """
    Ws, vids, chunks, comps, energies = [], [], [], [], []
    for video_id, W, active, energy in files:
        for c in np.flatnonzero(active):
            Ws.append(W[c])
            M = W.shape[2]
            vids += [video_id] * M
            chunks.append(np.full(M, c))
            comps.append(np.arange(M))
            energies.append(energy[c])
    if not Ws:
        raise ValueError("no active chunk to take bases from")
    return Dictionary(
        W=np.concatenate(Ws, axis=1).astype(np.float32),
        video_id=np.array(vids),
        chunk=np.concatenate(chunks),
        component=np.concatenate(comps),
        score=np.concatenate(energies).astype(np.float32),
    )


def _spherical_kmeans(X: np.ndarray, k: int, *, seed: int, n_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Cluster unit vectors (rows of X) by cosine similarity; returns (centroids, labels)."""
    rng = np.random.default_rng(seed)
    n = len(X)
    # k-means++ seeding on cosine distance.
    centers = [int(rng.integers(n))]
    dist = 1.0 - X @ X[centers[0]]
    for _ in range(1, k):
        p = np.clip(dist, 0, None) ** 2
        idx = int(rng.choice(n, p=p / p.sum())) if p.sum() > 0 else int(rng.integers(n))
        centers.append(idx)
        dist = np.minimum(dist, 1.0 - X @ X[idx])
    C = X[centers].copy()
    labels = np.zeros(n, int)
    for it in range(n_iter):
        new = np.argmax(X @ C.T, axis=1)
        if it and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = X[labels == j]
            if len(members):
                c = members.sum(0)
                C[j] = c / max(np.linalg.norm(c), 1e-12)
    return C, labels


def reduce_bases(pool: Dictionary, max_bases: int, *, method: str = "kmeans", seed: int = 0) -> Dictionary:
    """Keep at most ``max_bases`` of a pool by ``method`` (see the module docstring)."""
    if method not in REDUCTIONS:
        raise ValueError(f"dictionary.reduce must be one of {REDUCTIONS}, got {method!r}")
    K = pool.W.shape[1]
    if K <= max_bases:
        return pool
    if method == "random":
        keep = np.sort(np.random.default_rng(seed).choice(K, max_bases, replace=False))
    elif method == "top":
        keep = np.sort(np.argsort(-pool.score, kind="stable")[:max_bases])
    else:
        X = pool.W.T / np.maximum(np.linalg.norm(pool.W, axis=0), 1e-12)[:, None]
        C, labels = _spherical_kmeans(X.astype(np.float64), max_bases, seed=seed)
        nearest = np.argmax(X @ C.T, axis=0)  # the pooled basis closest to each centroid
        sizes = np.bincount(labels, minlength=max_bases)
        return Dictionary(
            W=np.clip(C.T, 0, None).astype(np.float32),
            video_id=pool.video_id[nearest],
            chunk=pool.chunk[nearest],
            component=pool.component[nearest],
            score=sizes.astype(np.float32),
        )
    return Dictionary(pool.W[:, keep], pool.video_id[keep], pool.chunk[keep], pool.component[keep], pool.score[keep])


def write_dictionaries(path: str | Path, dictionaries: dict[str, Dictionary], params: dict) -> None:
    """One HDF5 group per instrument, parameters as file attributes."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["format_version"] = FORMAT_VERSION
            for key, value in sorted(params.items()):
                h5.attrs[key] = value
            for name in sorted(dictionaries):
                d = dictionaries[name]
                g = h5.create_group(name, track_order=True)
                g.create_dataset("W", data=d.W, track_times=False)
                g.create_dataset("video_id", data=d.video_id.astype("S"), track_times=False)
                for field in ("chunk", "component", "score"):
                    g.create_dataset(field, data=getattr(d, field), track_times=False)


def read_dictionaries(path: str | Path, instruments: Sequence[str] | None = None) -> tuple[dict[str, Dictionary], dict]:
    """Read dictionaries (all, or those of ``instruments``, which must exist)."""
    with h5py.File(path, "r") as h5:
        attrs = check_cache(path, dict(h5.attrs), kind="dictionary")
        names = list(instruments) if instruments is not None else sorted(h5.keys())
        missing = [n for n in names if n not in h5]
        if missing:
            raise KeyError(f"{path}: no dictionary for {missing}; it has {sorted(h5.keys())}")
        out = {
            n: Dictionary(
                W=h5[n]["W"][()],
                video_id=h5[n]["video_id"][()].astype(str),
                chunk=h5[n]["chunk"][()],
                component=h5[n]["component"][()],
                score=h5[n]["score"][()],
            )
            for n in names
        }
    return out, attrs


def select_key_bases(
    relation: np.ndarray,
    targets: np.ndarray,
    bags: np.ndarray,
    video_id: np.ndarray,
    chunk: np.ndarray,
    label_names: Sequence[str],
    *,
    margin: float = 0.2,
    threshold: float = 0.5,
) -> tuple[dict[str, Dictionary], np.ndarray]:
    """Key bases per label from the MIML relation maps (Gao et al. 2018, Sec. 3.2).

    Each basis goes to the label it scores highest among its bag's weak labels (a basis of
    a bag with no cello cannot be a cello basis), unless an instrument absent from the bag
    claims it: scores at least ``threshold`` on it (so that this basis alone would make the
    network call the instrument present) and higher than the bag's own labels by ``margin``
    or more. Then the basis looks like another instrument (bleed, a mislabelled video) and
    is dropped. In a bag of several labels (a duet) a basis must also be told apart: its
    best label must beat the bag's next label by ``margin``, or it is dropped as a basis the
    network cannot give to either (NMF of a duet chunk gives many bases with partials of
    both instruments). On the demo's training duets this kept 313 of 900 bases, 0.90 of
    them of the right instrument, against 0.68 of all 900 given to their best label.

    Why the threshold: trained on multi-label bags, the network needs only one basis per
    present label to score the bag, and the softmax makes every other basis put its unit of
    belief somewhere, often on one "catch-all" instrument kept just under the bag threshold.
    A margin alone then vetoes most bases of some instruments (on the demo, 83 % of
    trumpet's, with ``miml.train_on: all``) though no instrument claims them.

    Why not "top label over all instruments, by a margin": most NMF bases (single
    partials, onsets, noise) are shared by several instruments, so their relation-map rows
    are flat, and a dictionary without them loses much of each instrument's timbre; the
    veto keeps them unless another instrument clearly claims them. For multi-label bags (visual labels) the MIML decides which of
    the bag's instruments each basis belongs to.

    Args:
        relation: ``(N, M, L)`` relation maps, each row a distribution over the labels.
        targets: ``(N, L)`` the bags' weak labels.
        bags: ``(N, M, F)`` the bases (any positive scale; stored unit-L2).
        video_id, chunk: ``(N,)`` provenance of each bag.

    Returns:
        label -> pool of its key bases (score = the relation map's value for the label),
        and a boolean ``(N, M)`` mask of the bases kept.
    """
    present = targets[:, None, :] == 1
    own = np.where(present, relation, -np.inf)
    label = own.argmax(axis=2)  # best of the bag's own labels
    own_score = own.max(axis=2)
    runner_up = np.sort(own, axis=2)[..., -2] if own.shape[2] > 1 else np.full(own_score.shape, -np.inf)
    absent_score = np.where(present, -np.inf, relation).max(axis=2)
    keep = np.isfinite(own_score) & ~((absent_score - own_score >= margin) & (absent_score >= threshold))
    keep &= ~np.isfinite(runner_up) | (own_score - runner_up >= margin)  # a multi-label bag's basis: told apart
    pools = {}
    for l, name in enumerate(label_names):
        n_idx, m_idx = np.nonzero(keep & (label == l))
        if len(n_idx) == 0:
            continue
        W = bags[n_idx, m_idx].T.astype(np.float32)
        W /= np.maximum(np.linalg.norm(W, axis=0, keepdims=True), 1e-12)
        pools[name] = Dictionary(W=W, video_id=video_id[n_idx], chunk=chunk[n_idx], component=m_idx,
                                 score=own_score[n_idx, m_idx].astype(np.float32))
    return pools, keep
