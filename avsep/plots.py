"""Figures for the report (matplotlib, drawn off-screen)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

__all__ = ["plot_split_counts", "plot_sdr_boxplot"]

SPLITS = ["train", "val", "test"]


def plot_split_counts(summary: pd.DataFrame, path) -> None:
    """Stacked bars: minutes of solo audio per instrument, split into train/val/test."""
    solo = summary[summary["kind"] == "solo"]
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(solo) + 2), 3.5))
    bottom = np.zeros(len(solo))
    for split, colour in zip(SPLITS, ("#4c72b0", "#dd8452", "#55a868")):
        values = solo[f"{split}_minutes"].to_numpy()
        ax.bar(solo["labels"], values, bottom=bottom, label=split, color=colour)
        bottom += values
    ax.set_ylabel("minutes of solo video")
    ax.set_title("Solo videos per instrument and split")
    ax.legend()
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def plot_sdr_boxplot(table: pd.DataFrame, methods: list[str], path) -> None:
    """SDR per method (left) and per instrument and method (right), as box plots."""
    scored = table[~table["silent_reference"].astype(bool)]
    methods = [m for m in methods if m in set(scored["method"])]
    instruments = sorted(scored["instrument"].unique())
    fig, (ax1, ax2) = plt.subplots(
        1, 2, figsize=(4 + 1.2 * len(instruments), 4), gridspec_kw={"width_ratios": [1, max(2, len(instruments) / 2)]}
    )
    ax1.boxplot([scored.loc[scored["method"] == m, "sdr"] for m in methods], tick_labels=methods, showmeans=True)
    ax1.set_ylabel("SDR (dB)")
    ax1.set_title("per method")
    ax1.axhline(0, color="grey", lw=0.5)
    width = 0.8 / len(methods)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, m in enumerate(methods):
        data = [scored.loc[(scored["method"] == m) & (scored["instrument"] == i), "sdr"] for i in instruments]
        pos = np.arange(len(instruments)) + (k - (len(methods) - 1) / 2) * width
        bp = ax2.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False)
        for box in bp["boxes"]:
            box.set_facecolor(colours[k % len(colours)])
        ax2.plot([], [], color=colours[k % len(colours)], lw=6, label=m)
    ax2.set_xticks(np.arange(len(instruments)), instruments, rotation=30)
    ax2.set_title("per instrument")
    ax2.axhline(0, color="grey", lw=0.5)
    ax2.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
