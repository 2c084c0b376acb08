"""Figures for the report (matplotlib, drawn off-screen)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from avsep.report.overview import SPLITS  # noqa: E402

__all__ = ["plot_split_counts", "plot_sdr_boxplot", "plot_training_curves", "plot_deep_curves", "plot_deep_learning_curve", "plot_relation_maps", "plot_confusion", "plot_confusions",
           "plot_runtimes"]



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
    ax1.tick_params(axis="x", rotation=30)
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


def plot_training_curves(metrics: pd.DataFrame, path) -> None:
    """Loss, and accuracies with validation mAP, per epoch."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(metrics["epoch"], metrics["loss"], marker=".")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss")
    for col, label in (("train_acc", "train accuracy"), ("val_acc", "val accuracy"), ("val_map", "val mAP")):
        ax2.plot(metrics["epoch"], metrics[col], marker=".", label=label)
    ax2.set_xlabel("epoch")
    ax2.set_ylim(0, 1.02)
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def _deep_title(cfg) -> str:
    return (f"deep: {cfg.network} (depth {cfg.depth}, {cfg.channels} channels), {cfg.condition} "
            f"conditioning on {cfg.visual} features, {cfg.target} masks")


def _sdr_band(ax, metrics: pd.DataFrame, x: str) -> None:
    """Validation SDR, mean with one standard deviation, against column ``x``."""
    ax.plot(metrics[x], metrics["val_sdr"], marker=".")
    ax.fill_between(metrics[x], metrics["val_sdr"] - metrics["val_sdr_std"],
                    metrics["val_sdr"] + metrics["val_sdr_std"], alpha=0.2)
    ax.set_xlabel("training minutes" if x == "minutes" else x)
    ax.set_ylabel("validation SDR (dB), mean +/- sd")


def plot_deep_curves(metrics: pd.DataFrame, cfg, path) -> None:
    """The deep separator's training per epoch: training and validation loss, and the
    validation SDR (mean with one standard deviation), titled with the network that ran."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax1.plot(metrics["epoch"], metrics["loss"], marker=".", label="training")
    ax1.plot(metrics["epoch"], metrics["val_loss"], marker=".", label="validation")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("weighted mask loss")
    ax1.legend()
    _sdr_band(ax2, metrics, "epoch")
    fig.suptitle(_deep_title(cfg), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def plot_deep_learning_curve(metrics: pd.DataFrame, cfg, path) -> None:
    """Validation SDR against training minutes (what more compute buys); it measures the run,
    so it differs from run to run."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    _sdr_band(ax, metrics, "minutes")
    ax.set_title(_deep_title(cfg), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def plot_relation_maps(relation, targets, kept, label_names, titles, path) -> None:
    """Relation maps (bases x labels) of a few bags; kept bases marked with a dot.

    Args:
        relation: ``(n, M, L)`` distributions over labels; targets ``(n, L)``; kept ``(n, M)``.
    """
    n = len(relation)
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.6 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        p = relation[k]
        ax.imshow(p, aspect="auto", vmin=0, vmax=1, cmap="magma")
        ys = np.flatnonzero(kept[k])
        ax.scatter(p[ys].argmax(axis=1), ys, s=6, c="cyan")
        ax.set_xticks(range(len(label_names)), label_names, rotation=60, fontsize=7)
        ax.set_ylabel("basis")
        truth = ", ".join(label_names[i] for i in np.flatnonzero(targets[k]))
        ax.set_title(f"{titles[k]}\n(label: {truth})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def plot_purity(purity: pd.DataFrame, path) -> None:
    """Per instrument, the purity of its MIML dictionary (:func:`avsep.miml.purity.dictionary_purity`),
    a bar per instrument coloured by where its bags came from, with ``pure / known`` written on it."""
    colours = {"solo and multi": "tab:blue", "multi only": "tab:orange", "solo only": "tab:green"}
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(purity) + 1.4))
    y = np.arange(len(purity))
    values = purity["purity"].fillna(0).to_numpy(float)
    ax.barh(y, values, color=[colours.get(k, "tab:gray") for k in purity["learned_from"]])
    for k, row in enumerate(purity.itertuples()):
        ax.text(min(values[k], 0.98), k, f" {row.pure}/{row.known}" + (f" ({row.from_multi} multi)" if row.from_multi else ""),
                va="center", ha="right" if values[k] > 0.5 else "left", fontsize=8,
                color="white" if values[k] > 0.5 else "black")
    ax.axvline(0.8, color="k", ls="--", lw=0.8)
    ax.set_yticks(y, purity["instrument"])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("purity: fraction of selected bases whose energy is the instrument's")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for k, c in colours.items() if k in set(purity["learned_from"])]
    if handles:
        ax.legend(handles, [k for k in colours if k in set(purity["learned_from"])], fontsize=7, loc="lower left",
                  title="bags from", title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def _confusion_axes(ax, cm: np.ndarray, names, title: str) -> None:
    rows = cm.sum(axis=1, keepdims=True)
    norm = cm / np.maximum(rows, 1)
    ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    for i in range(len(names)):
        for j in range(len(names)):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=60, fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)


def plot_confusion(cm: np.ndarray, names, accuracy: float, path, *, title: str = "validation frames") -> None:
    """Confusion matrix (rows true, columns predicted), normalised per row, with counts."""
    plot_confusions([(cm, f"{title}, accuracy {accuracy:.3f}")], names, path)


def plot_confusions(panels, names, path) -> None:
    """Confusion matrices side by side: ``(cm, title)`` per panel, rows true, columns
    predicted, normalised per row, with counts."""
    size = 1 + 0.6 * len(names)
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size * 0.92), squeeze=False)
    for ax, (cm, title) in zip(axes[0], panels):
        _confusion_axes(ax, cm, names, title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)


def plot_runtimes(table: pd.DataFrame, path) -> None:
    """Horizontal bars: job time per rule (summed over its jobs), longest on top."""
    table = table.sort_values("total_s")
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(table) + 1.2))
    ax.barh(table["rule"], table["total_s"], color="#4c72b0")
    for y, (total, jobs) in enumerate(zip(table["total_s"], table["jobs"])):
        ax.text(total, y, f" {total:.0f} s ({jobs} job{'s' if jobs != 1 else ''})", va="center", fontsize=8)
    ax.set_xlabel("job time, seconds (summed over jobs)")
    ax.set_xlim(0, max(1.0, float(table["total_s"].max())) * 1.3)
    ax.set_title("Run time per rule")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
