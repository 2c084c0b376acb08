"""What a trained MIML network says: the label scores and basis x label relation maps of
bags (which stage 5 reads to pick each instrument's key bases), and the instrument it names
for a track from the track's own NMF bases."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from avsep.miml.bags import normalize_bases
from avsep.miml.model import MIMLNet

__all__ = ["relation_maps", "chunk_scores", "predict_instrument", "audio_tags"]


def relation_maps(model: MIMLNet, bags: np.ndarray, device: str = "cpu",
                  batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Bag scores ``(N, L)`` and relation maps ``(N, M, L)`` (probabilities) of ``bags``
    ``(N, M, F)``, ``batch`` bags at a time, with the model switched to eval mode."""
    model.eval()
    outs, rels = [], []
    with torch.no_grad():
        for i in range(0, len(bags), batch):
            s, r = model(torch.from_numpy(bags[i : i + batch]).to(device))
            outs.append(s.cpu().numpy())
            rels.append(r.cpu().numpy())
    if not outs:
        return np.zeros((0, model.n_labels), np.float32), np.zeros((0, bags.shape[1], model.n_labels), np.float32)
    return np.concatenate(outs), np.concatenate(rels)


def chunk_scores(model: MIMLNet, audio: np.ndarray, stft_cfg, nmf_cfg, device: str = "cpu") -> np.ndarray:
    """The MIML network's label scores ``(C, L)`` of each of the ``C`` non-silent chunks of
    ``audio``, every chunk factored like the training videos (a recording shorter than a
    chunk is one chunk of its own length); ``(0, L)`` when every chunk is silent."""
    from avsep.bases import compute_bases

    seconds = len(audio) / stft_cfg.sample_rate
    if seconds < nmf_cfg.chunk_seconds:
        nmf_cfg = dataclasses.replace(nmf_cfg, chunk_seconds=seconds)
    bases = compute_bases(audio, stft_cfg, nmf_cfg, device=device)
    if not bases.active.any():
        return np.zeros((0, model.n_labels), np.float32)
    return relation_maps(model, normalize_bases(bases.W[bases.active]), device)[0]


def predict_instrument(
    model: MIMLNet, audio: np.ndarray, stft_cfg, nmf_cfg, label_names: Sequence[str], device: str = "cpu"
) -> tuple[str, np.ndarray]:
    """Name the instrument of a (separated) track from its own NMF bases.

    Every non-silent chunk of ``audio`` is factored like the training videos; the MIML
    network scores each chunk's bag, and the chunk probabilities are averaged.

    Returns:
        the most likely label (``""`` when every chunk is silent) and the ``(L,)`` mean
        probabilities.
    """
    scores = chunk_scores(model, audio, stft_cfg, nmf_cfg, device)
    if not len(scores):
        return "", np.zeros(len(label_names), np.float32)
    probs = scores.mean(axis=0)
    return label_names[int(probs.argmax())], probs


def audio_tags(
    model: MIMLNet, audio: np.ndarray, stft_cfg, nmf_cfg, label_names: Sequence[str], device: str = "cpu"
) -> dict:
    """What the MIML network hears in a whole mixture or duet: each instrument's bag score
    (the most any of a chunk's bases believes in it), averaged over the non-silent chunks.

    The network was trained on bags of one video's bases with weak, multi-label labels, so
    a mixture's chunk is a bag like any other, and its scores rank the instruments that
    play in it. They rank; they are not calibrated probabilities of presence (a mixture's
    second instrument often scores well below its first).

    Returns:
        ``{"scores": {name: score}, "ranked": [names, best first], "chunks": the
        non-silent chunks scored, "silent": bool}``; a silent recording scores 0 everywhere
        and ranks nothing. ``ranked[0]`` is :func:`predict_instrument`'s label of the same
        audio (``""`` where it is silent), so evaluation reads it instead of factoring the
        recording again.
    """
    per_chunk = chunk_scores(model, audio, stft_cfg, nmf_cfg, device)
    probs = per_chunk.mean(axis=0) if len(per_chunk) else np.zeros(len(label_names), np.float32)
    scores = {name: round(float(p), 6) for name, p in zip(label_names, probs)}
    # Ranked on the unrounded scores, ties in label order: ranked[0] is predict_instrument's label.
    ranked = [label_names[i] for i in sorted(range(len(label_names)), key=lambda i: -probs[i])] if len(per_chunk) else []
    return {"scores": scores, "ranked": ranked, "chunks": int(len(per_chunk)), "silent": not len(per_chunk)}
