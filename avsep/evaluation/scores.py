"""BSS Eval metrics of separated tracks against the ground-truth stems.

Per source, mir_eval's ``bss_eval_sources`` (Vincent et al. 2006) gives SDR, SIR and SAR,
with ``compute_permutation=False``: sources are matched by label
(:mod:`avsep.evaluation.matching`), not by the permutation that scores best, so a track
given the wrong instrument is scored as wrong. SDRi is the SDR gained over using the
mixture itself as the estimate. A silent reference has no defined SDR: it is skipped and
counted, and the other sources are still scored.

Two backends compute the same numbers: ``mir_eval`` itself (the default, the reference the
papers use) and ``shared`` (:mod:`avsep.bsseval`: mir_eval's algebra with the references'
projections computed once per mixture for every method; equal to 1e-6 dB, several times
faster on long mixtures).
"""

from __future__ import annotations

import functools
import warnings
from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["METRICS", "BACKENDS", "silence_stand_in", "is_silent", "bss_eval", "evaluate_mixture"]

METRICS = ["sdr", "sir", "sar", "sdri"]


def silence_stand_in(n: int) -> np.ndarray:
    """What an all-zero estimate is scored as: white noise at -120 dBFS, always the same."""
    return 1e-6 * np.random.default_rng(0).standard_normal(n)


def is_silent(signal: np.ndarray, threshold_db: float = -80.0) -> bool:
    """True when the RMS level of ``signal`` is below ``threshold_db`` dBFS."""
    rms = float(np.sqrt(np.mean(np.asarray(signal, np.float64) ** 2))) if len(signal) else 0.0
    return rms <= 10 ** (threshold_db / 20)


BACKENDS = ("mir_eval", "shared")


def bss_eval(references: np.ndarray, estimates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SDR, SIR, SAR per source by mir_eval, sources in matching order.

    Args:
        references, estimates: ``(nb_sources, nb_samples)``.
    """
    import mir_eval  # imported here: a second to load, and the shared backend does without it

    with warnings.catch_warnings():
        # mir_eval 0.8 marks bss_eval_sources deprecated; it is still the reference
        # implementation the papers we compare with report.
        warnings.simplefilter("ignore", FutureWarning)
        sdr, sir, sar, _ = mir_eval.separation.bss_eval_sources(
            references.astype(np.float64), estimates.astype(np.float64), compute_permutation=False
        )
    return sdr, sir, sar


def evaluate_mixture(
    mix_id: str,
    mixture: np.ndarray,
    stems: Mapping[str, np.ndarray],
    estimates: Mapping[str, Mapping[str, np.ndarray]],
    positions: Mapping[str, str] | None = None,
    labels: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
    placement: Mapping[str, Mapping[str, object]] | None = None,
    backend: str = "mir_eval",
    matched: Mapping[str, Mapping[str, tuple[str, str]]] | None = None,
    failed: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Score every method's estimates of one mixture.

    Args:
        mix_id: the mixture's id.
        mixture: ``(nb_samples,)``.
        stems: instrument -> true stem ``(nb_samples,)``.
        estimates: method -> instrument -> estimate ``(nb_samples,)``. The method
            ``"mixture"`` (the mixture as every estimate) is always added as the baseline.
        positions: instrument -> "left"/"right", copied into the table.
        labels: classifier -> method -> instrument -> the label that audio classifier
            gives the method's estimate of the instrument; each classifier ``c`` adds the
            columns ``c_label`` and ``c_correct`` (is it the instrument?). The pipeline's
            are ``audio`` (the independent probe, :mod:`avsep.probe`) and ``miml_audio``
            (the MIML network, which also chose ``miml_nmf``'s bases).
        placement: for methods whose instruments came from vision, method ->
            ``{"visual_correct": bool, "location": {instrument: bool or None}, "uncertain":
            bool}``: whether vision named both instruments, whether each source's track sits
            on its true side (None: the side is not known, and not scored), and whether
            vision flagged itself uncertain (and was still separated).
        backend: ``"mir_eval"`` or ``"shared"`` (see this module's docstring).
        matched: method -> instrument -> ``(track label, how)`` from
            :func:`avsep.evaluation.matching.method_estimates`, copied into
            ``matched_track`` and ``matched_by``.
        failed: method -> why it separated nothing (its estimates are then the mixture),
            copied into ``failed`` ("" for the others).

    Returns:
        One row per method x instrument: ``mix_id, method, instrument, position, sdr, sir,
        sar, sdri, silent_reference, silent_estimate``. Metrics are NaN where the reference
        is silent (they are not defined; summaries skip them), and SIR is NaN when only one
        reference is not silent (nothing to interfere). An all-zero estimate is
        scored as :func:`silence_stand_in` and flagged. Then ``matched_track, matched_by,
        failed`` and the columns of ``labels`` and ``placement``.
    """
    instruments = list(stems)
    scored = [i for i in instruments if not is_silent(stems[i])]
    refs = np.stack([stems[i] for i in scored]) if scored else None
    if backend not in BACKENDS:
        raise ValueError(f"evaluation backend must be one of {BACKENDS}, got {backend!r}")
    if scored and backend == "shared":
        from avsep.bsseval import ReferenceProjector

        score = ReferenceProjector(refs).metrics
    else:
        score = functools.partial(bss_eval, refs)
    all_estimates = {"mixture": {i: mixture for i in instruments}, **estimates}
    silent_estimate = {}
    for method, est in all_estimates.items():
        missing = [i for i in instruments if i not in est]
        if missing:
            raise ValueError(f"{mix_id}: method {method!r} has no estimate for {missing}")
        bad = [i for i in instruments if not np.isfinite(est[i]).all()]
        if bad:
            raise ValueError(f"{mix_id}: method {method!r} gave NaN or Inf samples for {bad}")
        silent = [i for i in instruments if not np.any(est[i])]
        if silent:
            # BSS Eval is 0/0 for an all-zero estimate (mir_eval refuses it). It is scored as
            # seeded white noise instead: the metrics are scale-invariant, so this is the score
            # of an estimate carrying no information, finite and very low.
            est = dict(est)
            for i in silent:
                est[i] = silence_stand_in(len(est[i]))
            all_estimates[method] = est
        silent_estimate[method] = set(silent)
    metrics_of = {m: score(np.stack([est[i] for i in scored])) if scored else None for m, est in all_estimates.items()}
    baseline = metrics_of["mixture"][0] if scored else None
    rows = []
    for method, est in all_estimates.items():
        metrics = metrics_of[method]
        for inst in instruments:
            row = {"mix_id": mix_id, "method": method, "instrument": inst,
                   "position": (positions or {}).get(inst, ""), "silent_reference": inst not in scored,
                   "silent_estimate": inst in silent_estimate[method]}
            if inst in scored:
                k = scored.index(inst)
                sdr, sir, sar = (float(m[k]) for m in metrics)
                if len(scored) < 2:
                    sir = np.nan  # no other source to interfere: SIR is not defined
                row.update(sdr=sdr, sir=sir, sar=sar, sdri=sdr - float(baseline[k]))
            else:
                row.update(sdr=np.nan, sir=np.nan, sar=np.nan, sdri=np.nan)
            unmatched = ("", "") if method == "mixture" else (inst, "label")  # the baseline has no tracks
            track, how = (matched or {}).get(method, {}).get(inst, unmatched)
            row.update(matched_track=track, matched_by=how,
                       failed=(failed or {}).get(method, ""))
            for name, by_method in (labels or {}).items():
                predicted = by_method.get(method, {}).get(inst, "")
                row.update({f"{name}_label": predicted, f"{name}_correct": predicted == inst})
            if placement is not None:
                place = placement.get(method)
                located = None if place is None else place["location"].get(inst)
                row.update(visual_correct=np.nan if place is None else float(place["visual_correct"]),
                           location_correct=np.nan if located is None else float(located),
                           uncertain=bool(place and place.get("uncertain", False)))
            rows.append(row)
    return pd.DataFrame(rows)
