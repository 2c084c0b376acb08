"""The evaluation summary as Markdown prose and tables (``results/eval/summary.md``): what
the metrics and methods are, and the per-method and per-instrument tables of
:func:`avsep.evaluation.summary.summarize`, each mean with its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["methods_markdown", "SUMMARY_TEXT", "summary_markdown"]


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
    "labels; `miml_nmf` with the bases the MIML network selected; the instruments they "
    "separate come from `separation.labels` (by default a duet folder's, else the two the MIML "
    "network hears in the mixture, placed left and right by vision); `_vision` methods use "
    "vision's own labels (the paper's setting) and `_truth` methods the true instruments; "
    "`deep` is the mask network conditioned on what "
    "vision sees on each side, trained by mix-and-separate on the training solos (its "
    "network, conditioning and features are in `results/deep/curves.png` and each "
    "`separation.json`). `audio_acc` is the fraction of tracks that the "
    "independent audio probe (a linear classifier on log-mel statistics, trained on the "
    "training solos, `results/probe/`) names as the instrument they should hold; "
    "`miml_audio_acc` the same by the MIML network, which also chose `miml_nmf`'s bases "
    "(so it is not independent of it). For methods whose instruments came from the vision "
    "stage, `visual_acc` is the fraction of mixtures where the labels named both instruments, "
    "`location_acc` the fraction of sources whose track sits on their true side, `flagged` "
    "the mixtures where the labels were uncertain (vision's margin too small, or audio and "
    "vision naming different pairs) and were separated all the same, and "
    "`failed` those where nothing could be separated (scored as the mixture). `silent "
    "skipped` counts sources whose true stem is silent (no metric is defined for them)."
)


def summary_markdown(per_method: pd.DataFrame, per_instrument: pd.DataFrame, *, n_mixtures: int,
                     duets: tuple[pd.DataFrame, pd.DataFrame, int] | None = None,
                     reference: str = "oracle_nmf") -> str:
    """The evaluation summary as Markdown: the per-method table with intervals and the SDR
    per instrument, for the test mixtures and, when given, for the duets with true stems."""
    lines = ["# Separation results", "", SUMMARY_TEXT.format(reference=reference), ""]
    if n_mixtures:
        lines += [f"## {n_mixtures} test mixtures (mix-and-separate): per method (dB)", "",
                  methods_markdown(per_method), "",
                  "### Mean SDR per instrument and method (dB)", "", per_instrument.to_markdown(), ""]
    else:
        lines += ["No test mixtures (mixtures.count: 0); the duets below are scored against their true stems.", ""]
    if duets is not None:
        duet_methods, duet_instruments, n_duets = duets
        lines += [f"## {n_duets} duets with true stems: per method (dB)", "", methods_markdown(duet_methods), "",
                  "### Mean SDR per instrument and method (dB)", "", duet_instruments.to_markdown(), ""]
    return "\n".join(lines)
