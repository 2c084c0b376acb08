"""How pure each MIML dictionary is: of the bases key-basis selection gave an instrument, the
fraction whose energy really belongs to that instrument.

A basis comes from one chunk of one training video (:class:`avsep.dictionary.Dictionary`
keeps where). Its true source is:

- for a solo video, the video's instrument (its folder);
- for a multi-source video with true stems (the demo's duets, URMP), the stem that carries
  most of the basis's energy in its chunk (:func:`stem_shares`): the basis's own spectrogram
  ``W[:, m] H[m]`` is shared among the stems in proportion to each stem's power in every
  time-frequency bin (the stems' Wiener weights);
- for a multi-source video without stems, unknown: such bases are counted apart and left
  out of the purity.

This is the measurement the paper's claim needs: a basis of a violin-cello bag must go to
violin or to cello, and here one can see whether it went to the right one.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from avsep.bases import NMFConfig
from avsep.transforms import STFTConfig, frames_per_chunk, split_chunks, stft

__all__ = ["stem_shares", "BasisSources", "dictionary_purity", "learned_from", "read_stems"]


def stem_shares(W: np.ndarray, H: np.ndarray, stems: Mapping[str, np.ndarray], stft_cfg: STFTConfig,
                nmf_cfg: NMFConfig) -> tuple[list[str], np.ndarray]:
    """Each basis's share of energy per stem: ``(names, shares (C, M, S))``, rows summing to 1
    (0 where a chunk is silent in every stem).

    Args:
        W: ``(C, F, M)`` bases and ``H``: ``(C, M, n)`` activations of a video's chunks
            (:func:`avsep.bases.read_bases`), on the grid of the centred STFT of ``stft_cfg``.
        stems: instrument -> mono stem at ``stft_cfg.sample_rate``, aligned with the video's
            audio.
    """
    names = sorted(stems)
    C, F, M = W.shape
    n = frames_per_chunk(nmf_cfg.chunk_seconds, stft_cfg)
    if H.shape[2] != n:
        raise ValueError(f"the activations hold {H.shape[2]} frames per chunk, but nmf.chunk_seconds "
                         f"{nmf_cfg.chunk_seconds} at this STFT gives {n}: bases of other settings")
    power = []
    for name in names:
        chunks = split_chunks(np.abs(stft(stems[name], stft_cfg)) ** 2, n, pad=True)
        if len(chunks) < C:
            chunks = np.concatenate([chunks, np.zeros((C - len(chunks), F, n), chunks.dtype)])
        power.append(chunks[:C])
    power = np.stack(power, axis=1)  # (C, S, F, n)
    weights = power / np.maximum(power.sum(axis=1, keepdims=True), 1e-20)
    energy = np.einsum("cfm,cmt,csft->cms", W.astype(np.float64), H.astype(np.float64), weights)
    total = energy.sum(axis=2, keepdims=True)
    return names, np.where(total > 0, energy / np.maximum(total, 1e-300), 0.0)


class BasisSources:
    """The true instrument of a training basis (see the module).

    Args:
        solo: solo video id -> its instrument.
        shares: multi-source video id -> :func:`stem_shares` of its chunks.
        multi: every multi-source video id, with stems or without.
    """

    def __init__(self, solo: Mapping[str, str], shares: Mapping[str, tuple[list[str], np.ndarray]],
                 multi: set[str] | frozenset = frozenset()):
        self.solo, self.shares, self.multi = dict(solo), dict(shares), set(multi) | set(shares)

    def __call__(self, video_id: str, chunk: int, component: int) -> str | None:
        if video_id in self.solo:
            return self.solo[video_id]
        if video_id in self.shares:
            names, share = self.shares[video_id]
            row = share[chunk, component]
            return names[int(row.argmax())] if row.sum() > 0 else None
        return None


def dictionary_purity(pools: Mapping, sources: BasisSources, learned_from: Mapping[str, str]) -> pd.DataFrame:
    """Per instrument, the purity of its selected bases.

    Args:
        pools: instrument -> :class:`avsep.dictionary.Dictionary` of its key bases.
        sources: the true instrument of each basis (:class:`BasisSources`).
        learned_from: instrument -> where its bags came from (``solo and multi``, ``multi
            only``, ``solo only``).

    Returns:
        ``instrument, learned_from, selected, from_multi`` (selected bases of multi-source
        videos), ``known`` (bases whose source is known), ``pure``, ``purity`` (``pure /
        known``) and ``wrong_to`` (the instrument the impure bases belong to most often).
    """
    rows = []
    for name in sorted(pools):
        d = pools[name]
        truth = [sources(v, int(c), int(m)) for v, c, m in zip(d.video_id, d.chunk, d.component)]
        known = [t for t in truth if t is not None]
        wrong = pd.Series([t for t in known if t != name], dtype=object)
        pure = sum(t == name for t in known)
        rows.append({"instrument": name, "learned_from": learned_from.get(name, ""), "selected": len(truth),
                     "from_multi": int(sum(v in sources.multi for v in d.video_id)), "known": len(known),
                     "pure": pure, "purity": round(pure / len(known), 4) if known else np.nan,
                     "wrong_to": wrong.value_counts().index[0] if len(wrong) else ""})
    return pd.DataFrame(rows, columns=["instrument", "learned_from", "selected", "from_multi", "known", "pure",
                                       "purity", "wrong_to"])


def learned_from(bags, kinds: Mapping[str, str]) -> dict[str, str]:
    """Instrument -> where its training bags came from: ``solo and multi``, ``multi only`` or
    ``solo only`` (``bags``: :class:`avsep.miml.bags.Bags`; ``kinds``: video id -> ``solo``
    or ``duet``)."""
    multi = np.array([kinds[v] != "solo" for v in bags.video_id], bool)
    out = {}
    for l, name in enumerate(bags.label_names):
        has = bags.targets[:, l] == 1
        solo, mult = bool((has & ~multi).any()), bool((has & multi).any())
        out[name] = "solo and multi" if solo and mult else "multi only" if mult else "solo only" if solo else "none"
    return out


def read_stems(paths: Mapping[str, str], sample_rate: int) -> dict[str, np.ndarray]:
    """Instrument -> mono stem at ``sample_rate`` (:func:`avsep.files.read_mono`)."""
    from avsep.files import read_mono

    return {name: read_mono(path, sample_rate) for name, path in paths.items()}
