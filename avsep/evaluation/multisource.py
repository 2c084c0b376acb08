"""The multi-source experiment's table (``miml.solo_excluded``, config/multisource.yaml): on
the test mixtures that hold an instrument MIML could learn only from multi-source videos,
this run's scores beside those of a normal run (solos of every instrument) on the same
mixtures.

The normal run's ``oracle_nmf`` is the reference the target is stated against. This run
has no ``oracle_nmf`` for the excluded instruments: their solos are not used, so no oracle
dictionary exists. The table says so in a row of its own rather than leave it out.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from avsep.stats import cluster_bootstrap, paired_difference

__all__ = ["COLUMNS", "excluded_mixtures", "multisource_table", "multisource_markdown"]

COLUMNS = ["run", "method", "sources", "mixtures", "subset", "sdr_mean", "sdr_lo", "sdr_hi", "note"]


def excluded_mixtures(scores: pd.DataFrame, excluded: Sequence[str]) -> list[str]:
    """The mixtures of ``scores`` (a ``results/eval/summary.tsv``) that hold an instrument of
    ``excluded``."""
    held = scores.loc[scores["instrument"].isin(excluded), "mix_id"]
    return sorted(set(held))


def _scored(scores: pd.DataFrame, mixes: Sequence[str]) -> pd.DataFrame:
    rows = scores[scores["mix_id"].isin(mixes)]
    return rows[~rows["silent_reference"].astype(bool)]


def multisource_table(this: pd.DataFrame, excluded: Sequence[str], reference: pd.DataFrame | None = None, *,
                      reference_name: str = "", seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """The experiment's rows, and the figures the target is read from.

    Args:
        this: this run's per-source scores (``results/eval/summary.tsv``).
        excluded: ``miml.solo_excluded``.
        reference: a normal run's per-source scores, or ``None`` (its rows are then absent).

    Returns:
        rows with :data:`COLUMNS`: per run and method, the SDR mean and its 95 %
        cluster-bootstrap interval over the sources of the mixtures holding an excluded
        instrument (``subset: all sources``) and over the excluded instruments' own sources
        (``subset: excluded instruments``); and ``{"mixtures", "ratio", "paired"}``: this
        run's ``miml_nmf`` mean over the normal run's ``oracle_nmf`` mean, and their paired
        difference with its interval (NaN without a reference).

    Raises:
        ValueError: no mixture holds an excluded instrument, or the reference run's sources
            on these mixtures are not this run's (another dataset or plan).
    """
    mixes = excluded_mixtures(this, excluded)
    if not mixes:
        raise ValueError(f"no test mixture holds {', '.join(excluded)} (miml.solo_excluded): nothing to compare; "
                         "raise mixtures.count or exclude other instruments")
    runs = [("this run", _scored(this, mixes))]
    if reference is not None:
        ref = _scored(reference, mixes)
        mine = set(zip(runs[0][1]["mix_id"], runs[0][1]["instrument"]))
        theirs = set(zip(ref["mix_id"], ref["instrument"]))
        if not theirs or mine != theirs:
            raise ValueError(f"the reference run ({reference_name}) does not hold the same sources on the "
                             f"{len(mixes)} mixtures with {', '.join(excluded)}: it is another dataset or mixture "
                             "plan; compare with a normal run of the same dataset and config")
        runs.append(("normal run", ref))
    rows = []
    for run, table in runs:
        for method, group in table.groupby("method", sort=False):
            for subset, part in (("all sources", group), ("excluded instruments",
                                                          group[group["instrument"].isin(excluded)])):
                mean, lo, hi = cluster_bootstrap(part["sdr"], part["mix_id"], seed=seed)
                rows.append({"run": run, "method": method, "sources": len(part), "mixtures": part["mix_id"].nunique(),
                             "subset": subset, "sdr_mean": mean, "sdr_lo": lo, "sdr_hi": hi, "note": ""})
    rows.append({"run": "this run", "method": "oracle_nmf", "sources": 0, "mixtures": len(mixes),
                 "subset": "all sources", "sdr_mean": np.nan, "sdr_lo": np.nan, "sdr_hi": np.nan,
                 "note": f"not built: the solos of {', '.join(excluded)} are excluded, so they have no oracle "
                         "dictionary"})
    figures = {"mixtures": len(mixes), "ratio": np.nan, "paired": (np.nan, np.nan, np.nan)}
    if reference is not None:
        mine = runs[0][1][runs[0][1]["method"] == "miml_nmf"]
        oracle = runs[1][1][runs[1][1]["method"] == "oracle_nmf"]
        if len(mine) and len(oracle):
            figures["ratio"] = float(mine["sdr"].mean() / oracle["sdr"].mean())
            both = pd.concat([mine, oracle.assign(method="reference_oracle_nmf")])
            figures["paired"] = paired_difference(both, "miml_nmf", "reference_oracle_nmf", seed=seed)
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.round({"sdr_mean": 2, "sdr_lo": 2, "sdr_hi": 2}), figures


def multisource_markdown(table: pd.DataFrame, figures: dict, excluded: Sequence[str], reference_name: str) -> str:
    """The table as Markdown, with the target's ratio and the paired difference."""
    lines = [f"# Learned from multi-source videos only: {', '.join(excluded)}", "",
             f"{figures['mixtures']} test mixtures hold an instrument whose solo videos gave MIML no bags and no "
             "oracle dictionary (`miml.solo_excluded`). SDR in dB, 95 % intervals from resampling whole mixtures.", ""]
    lines += ["| run | method | subset | sources | SDR | note |", "|---|---|---|---|---|---|"]
    for r in table.itertuples():
        sdr = "—" if not np.isfinite(r.sdr_mean) else f"{r.sdr_mean:.2f} [{r.sdr_lo:.2f}, {r.sdr_hi:.2f}]"
        lines.append(f"| {r.run} | {r.method} | {r.subset} | {r.sources} | {sdr} | {r.note} |")
    lines.append("")
    if np.isfinite(figures["ratio"]):
        d, lo, hi = figures["paired"]
        lines.append(f"This run's `miml_nmf` over the normal run's `oracle_nmf` on these mixtures: "
                     f"**{figures['ratio']:.3f}** of its mean SDR; paired difference {d:+.2f} dB [{lo:+.2f}, {hi:+.2f}].")
    else:
        lines.append("No normal run to compare with (`evaluation.compare_with` is empty or lacks a method): only "
                     "this run's rows are shown.")
    if reference_name:
        lines.append(f"The normal run's scores: `{reference_name}`.")
    return "\n".join(lines) + "\n"
