"""Stage 8b: BSS Eval metrics of separated tracks against the ground-truth stems.

Per source, mir_eval's ``bss_eval_sources`` (Vincent et al. 2006) gives SDR, SIR and SAR,
with ``compute_permutation=False``: sources are matched by label, not by the permutation
that scores best, so a track given the wrong instrument is scored as wrong. SDRi is the SDR
gained over using the mixture itself as the estimate. A silent reference has no defined SDR:
it is skipped and counted, and the other sources are still scored.

Which track is a source's estimate (:func:`match_tracks`) is decided one to one: a source
whose instrument some track is labelled with takes that track; the sources left over take
the tracks left over in screen order (left to right); a source left without a track (the
method separated nothing, or fewer tracks than sources) is scored with the mixture as its
estimate, which is what doing nothing gives (SDRi 0). Every row says how it was matched.
No track serves two sources, so a wrong label costs the source it displaced as well.

Two backends compute the same numbers: ``mir_eval`` itself (the default, the reference the
papers use) and ``shared`` (:mod:`avsep.bsseval`: mir_eval's algebra with the references'
projections computed once per mixture for every method; equal to 1e-6 dB, several times
faster on long mixtures).
"""

from __future__ import annotations

import functools
import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from avsep.stats import cluster_bootstrap, paired_difference

__all__ = ["METRICS", "BACKENDS", "MATCHES", "is_silent", "bss_eval", "evaluate_mixture", "match_tracks",
           "METHOD_COLUMNS", "method_estimates", "methods_markdown", "summarize", "summary_markdown"]

METRICS = ["sdr", "sir", "sar", "sdri"]


def silence_stand_in(n: int) -> np.ndarray:
    """What an all-zero estimate is scored as: white noise at -120 dBFS, always the same."""
    return 1e-6 * np.random.default_rng(0).standard_normal(n)


def is_silent(signal: np.ndarray, threshold_db: float = -80.0) -> bool:
    """True when the RMS level of ``signal`` is below ``threshold_db`` dBFS."""
    rms = float(np.sqrt(np.mean(np.asarray(signal, np.float64) ** 2))) if len(signal) else 0.0
    return rms <= 10 ** (threshold_db / 20)


BACKENDS = ("mir_eval", "shared")

#: How a source found its track: by its label, by its place on screen, or not at all.
MATCHES = ("label", "position", "none")
_SCREEN_ORDER = {"left": 0, "center": 1, "right": 2}


def _screen_key(position: str | None, name: str) -> tuple:
    return (_SCREEN_ORDER.get(position or "", len(_SCREEN_ORDER)), name)


def match_tracks(sources: Mapping[str, str | None], tracks: Sequence[tuple[str, str | None]]) -> dict:
    """Pair each source with at most one track, each track with at most one source.

    Args:
        sources: true instrument -> its position on screen ("left", "right", or None).
        tracks: a method's tracks as ``(label, position)``, in the method's order; a label
            may appear twice (a vision stage that named one instrument on both sides).

    Returns:
        source -> ``(index into tracks or None, how)``, ``how`` one of :data:`MATCHES`:
        first every source takes a track carrying its label (the one on its own side when
        there are two); then the sources left take the tracks left, both in screen order
        (left to right, unknown positions last); a source for which no track is left gets
        ``(None, "none")``.
    """
    free = list(range(len(tracks)))
    out = {}
    for source in sorted(sources, key=lambda s: _screen_key(sources[s], s)):
        same = [k for k in free if tracks[k][0] == source]
        if same:
            k = min(same, key=lambda k: (tracks[k][1] != sources[source], k))
            out[source] = (k, "label")
            free.remove(k)
    left = sorted((s for s in sources if s not in out), key=lambda s: _screen_key(sources[s], s))
    free.sort(key=lambda k: _screen_key(tracks[k][1], tracks[k][0]))
    for source in left:
        out[source] = (free.pop(0), "position") if free else (None, "none")
    return {s: out[s] for s in sources}


def method_estimates(mixture: np.ndarray, sources: Mapping[str, str | None],
                     tracks: Sequence[tuple[str, str | None, np.ndarray]]) -> tuple[dict, dict]:
    """Each source's estimate under :func:`match_tracks`: ``(estimates, matched)``, where
    ``estimates`` maps source -> signal (the mixture where no track is left) and ``matched``
    maps source -> ``(track label or "", how)``."""
    pairs = match_tracks(sources, [(label, pos) for label, pos, _ in tracks])
    estimates = {s: mixture if k is None else tracks[k][2] for s, (k, _) in pairs.items()}
    matched = {s: ("" if k is None else tracks[k][0], how) for s, (k, how) in pairs.items()}
    return estimates, matched


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
        backend: ``"mir_eval"`` or ``"shared"`` (see the module's docstring).
        matched: method -> instrument -> ``(track label, how)`` from
            :func:`method_estimates`, copied into ``matched_track`` and ``matched_by``.
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


#: Per-method columns of ``methods.tsv`` and the report's main table, in order.
METHOD_COLUMNS = ["sources", "silent_skipped", "sdr_mean", "sdr_lo", "sdr_hi", "sdri_mean", "sdri_lo", "sdri_hi", "sir_mean",
                  "sar_mean", "sdr_diff", "sdr_diff_lo", "sdr_diff_hi", "audio_acc", "miml_audio_acc",
                  "visual_acc", "location_acc", "failed", "flagged", "by_position", "unmatched"]


def summarize(table: pd.DataFrame, method_order: list[str] | None = None, *, reference: str = "oracle_nmf",
              seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per method: mean and median metrics, 95 % intervals, failures; per instrument: SDR.

    Per method, ``<metric>_mean`` and ``<metric>_median`` of every metric, and for SDR and
    SDRi the cluster-bootstrap interval over mixtures (``sdr_lo``, ``sdr_hi``, ...; see
    :mod:`avsep.stats`); ``sdr_diff`` is the paired SDR difference from ``reference``, with
    its interval (absent when ``reference`` was not evaluated). ``failed`` counts the
    mixtures where the method separated nothing, ``flagged`` those whose vision was
    uncertain, ``by_position`` and ``unmatched`` the sources matched by screen position and
    not at all (:func:`match_tracks`). Accuracies: ``audio_acc`` from the independent probe
    (``audio_correct``), ``miml_audio_acc`` from the MIML network, ``visual_acc`` and
    ``location_acc`` from vision's placement.

    Returns:
        ``(per_method, per_instrument)``; silent references are counted, not averaged.
    """
    scored = table[~table["silent_reference"].astype(bool)]
    agg = {f"{m}_{s}": (m, s) for m in METRICS for s in ("mean", "median")}
    per_method = scored.groupby("method").agg(sources=("sdr", "size"), **agg)
    per_method["silent_skipped"] = table.groupby("method")["silent_reference"].sum().astype(int)
    for method, rows in scored.groupby("method"):
        for metric in ("sdr", "sdri"):
            _, lo, hi = cluster_bootstrap(rows[metric], rows["mix_id"], seed=seed)
            per_method.loc[method, [f"{metric}_lo", f"{metric}_hi"]] = lo, hi
        if reference in per_method.index:
            per_method.loc[method, ["sdr_diff", "sdr_diff_lo", "sdr_diff_hi"]] = paired_difference(
                scored, method, reference, "sdr", seed=seed)
    for column, name in (("audio_correct", "audio_acc"), ("miml_audio_correct", "miml_audio_acc")):
        if column in scored:
            per_method[name] = scored.groupby("method")[column].mean()
    for column, name in (("visual_correct", "visual_acc"), ("location_correct", "location_acc")):
        if column in table:
            per_method[name] = table.groupby("method")[column].mean()
    # Read back from a TSV, an empty reason is NaN and a flag may be a float: normalise both.
    if "failed" in table:
        failed = table["failed"].astype("string").fillna("").ne("")
        per_method["failed"] = failed.groupby([table["method"], table["mix_id"]]).any().groupby("method").sum()
    if "uncertain" in table:
        flagged = table["uncertain"].astype("boolean").fillna(False).astype(bool)
        per_method["flagged"] = flagged.groupby([table["method"], table["mix_id"]]).any().groupby("method").sum()
    if "matched_by" in table:
        per_method["by_position"] = (table["matched_by"] == "position").groupby(table["method"]).sum()
        per_method["unmatched"] = (table["matched_by"] == "none").groupby(table["method"]).sum()
    per_instrument = scored.pivot_table(index="instrument", columns="method", values="sdr", aggfunc="mean")
    order = [m for m in (method_order or []) if m in per_method.index]
    order += [m for m in per_method.index if m not in order]
    return per_method.loc[order].round(2), per_instrument[order].round(2)


def _interval(mean, lo, hi) -> str:
    if not np.isfinite(mean):
        return ""
    return f"{mean:.2f} [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else f"{mean:.2f}"


def methods_markdown(per_method: pd.DataFrame) -> str:
    """The per-method table as Markdown, each mean with its interval in brackets."""
    shown = pd.DataFrame(index=per_method.index)
    shown["sources"] = per_method["sources"]
    shown["silent skipped"] = per_method["silent_skipped"]
    shown["SDR"] = [_interval(*r) for r in per_method[["sdr_mean", "sdr_lo", "sdr_hi"]].to_numpy()]
    shown["SDRi"] = [_interval(*r) for r in per_method[["sdri_mean", "sdri_lo", "sdri_hi"]].to_numpy()]
    shown["SIR"], shown["SAR"] = per_method["sir_mean"], per_method["sar_mean"]
    if "sdr_diff" in per_method:
        shown["SDR - ref"] = [_interval(*r) for r in per_method[["sdr_diff", "sdr_diff_lo", "sdr_diff_hi"]].to_numpy()]
    for c in ("audio_acc", "miml_audio_acc", "visual_acc", "location_acc", "failed", "flagged", "by_position",
              "unmatched"):
        if c in per_method:
            shown[c] = per_method[c]
    return shown.to_markdown()


SUMMARY_TEXT = (
    "BSS Eval v3 (mir_eval `bss_eval_sources`). Each source is scored against one track and "
    "each track serves one source: the track labelled with the source's instrument, else the "
    "track left on screen in left-to-right order (`by_position`), else none (`unmatched`: the "
    "mixture itself is the estimate). SDRi is the gain over the mixture. Brackets are 95 % "
    "bootstrap intervals over mixtures (seeded); `SDR - ref` is the paired difference from "
    "`{reference}` on the same sources, the interval to read before calling one method "
    "better. `irm` is the ideal ratio mask from the true stems (the upper bound of ratio "
    "masking); `oracle_nmf` is guided NMF with dictionaries from the training videos' folder "
    "labels; `miml_nmf` with the bases the MIML network selected; `_truth` methods use the "
    "true instruments instead of vision's. `audio_acc` is the fraction of tracks that the "
    "independent audio probe (a linear classifier on log-mel statistics, trained on the "
    "training solos, `results/probe/`) names as the instrument they should hold; "
    "`miml_audio_acc` the same by the MIML network, which also chose `miml_nmf`'s bases "
    "(so it is not independent of it). For methods whose instruments came from the vision "
    "stage, `visual_acc` is the fraction of mixtures where vision named both instruments, "
    "`location_acc` the fraction of sources whose track sits on their true side, `flagged` "
    "the mixtures where vision was uncertain and its best two instruments were separated, and "
    "`failed` those where nothing could be separated (scored as the mixture). `silent "
    "skipped` counts sources whose true stem is silent (no metric is defined for them)."
)


def summary_markdown(per_method: pd.DataFrame, per_instrument: pd.DataFrame, *, n_mixtures: int,
                     duets: tuple[pd.DataFrame, pd.DataFrame, int] | None = None,
                     reference: str = "oracle_nmf") -> str:
    """The evaluation summary as Markdown: the per-method table with intervals and the SDR
    per instrument, for the test mixtures and, when given, for the duets with true stems."""
    lines = ["# Separation results", "", SUMMARY_TEXT.format(reference=reference), "",
             f"## {n_mixtures} test mixtures (mix-and-separate): per method (dB)", "",
             methods_markdown(per_method), "",
             "### Mean SDR per instrument and method (dB)", "", per_instrument.to_markdown(), ""]
    if duets is not None:
        duet_methods, duet_instruments, n_duets = duets
        lines += [f"## {n_duets} duets with true stems: per method (dB)", "", methods_markdown(duet_methods), "",
                  "### Mean SDR per instrument and method (dB)", "", duet_instruments.to_markdown(), ""]
    return "\n".join(lines)
