"""The aggregate tables of the evaluation: per method, the mean and median of every metric
with cluster-bootstrap intervals over mixtures, the paired difference from a reference
method, accuracies and failure counts; per instrument, the mean SDR of every method."""

from __future__ import annotations

import pandas as pd

from avsep.evaluation.scores import METRICS
from avsep.stats import cluster_bootstrap, paired_difference

__all__ = ["METHOD_COLUMNS", "summarize"]

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
    not at all (:func:`avsep.evaluation.matching.match_tracks`). Accuracies: ``audio_acc``
    from the independent probe (``audio_correct``), ``miml_audio_acc`` from the MIML
    network, ``visual_acc`` and ``location_acc`` from vision's placement.

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
