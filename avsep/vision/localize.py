"""The localization rules' work, from files and config dicts: training the audio-visual head
(rule ``train_localization``), the maps of one mixture or duet (``localization_maps``) and
their scores against the boxes (``evaluate_localization``). The maps are described in
:mod:`avsep.vision.maps` and :mod:`avsep.vision.correspondence`, the metrics in
:mod:`avsep.localization`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from avsep.errors import InputError
from avsep.files import read_frames, read_mono, write_table
from avsep.vision.training import sample_indices

__all__ = ["train_localization", "localize_item", "item_truth", "evaluate_localization", "showcase_localization"]


def _video_features(model, solo, split: str, loc: Mapping, input_size: int, names: Sequence[str], audio_of,
                    sample_rate: int, with_boxes: bool, device: str) -> dict:
    """The feature maps of ``frames_per_video`` frames of each solo of ``split``, its clips'
    audio features (every half second) and, with boxes, the cells inside them."""
    from avsep.localization import box_mask
    from avsep.vision.correspondence import audio_features
    from avsep.vision.maps import feature_maps

    out = {"maps": [], "audio": [], "label": [], **({"cells": []} if with_boxes else {})}
    seconds = loc["audio_seconds"]
    for row, frames, stamps in solo.frames(split):
        picks = sample_indices(len(frames), loc["frames_per_video"])
        maps = feature_maps(model, frames[picks], input_size=input_size, two_players=False, device=device)
        wave = read_mono(audio_of[row["video_id"]], sample_rate)
        length = len(wave) / sample_rate
        times = np.arange(seconds / 2, max(length - seconds / 2, seconds / 2) + 1e-9, 0.5)
        out["maps"].append(maps)
        out["audio"].append(audio_features(wave, sample_rate, times, seconds))
        out["label"].append(list(names).index(row["labels"]))
        if with_boxes:
            h, w = maps.shape[2:]
            boxes = solo.boxes(row, frames[picks], stamps[picks], names)
            grid = np.array([w / frames.shape[2], h / frames.shape[1]] * 2, np.float32)
            out["cells"].append(np.stack([box_mask(b * grid, h, w) for b, _ in boxes]))
    return out


def train_localization(manifest_path: str | Path, frame_paths: Sequence[str], audio_paths: Sequence[str],
                       annotation_paths: Sequence[str], vision_model: str | Path, loc: Mapping, *, frames_fps: float,
                       sample_rate: int, device: str, model_path: str | Path, metrics_path: str | Path,
                       log: logging.Logger) -> None:
    """Rule ``train_localization``: the audio-visual head on the train solos, the validation
    solos choosing its epoch. It learns from the instruments' box cells when every one of
    those solos has boxes, else from whole frames (see :mod:`avsep.vision.correspondence`)."""
    import torch

    from avsep.dataset import read_manifest
    from avsep.vision.classifier import load_classifier
    from avsep.vision.correspondence import save_correspondence, train_correspondence
    from avsep.vision.pipelines import SoloVideos

    manifest = read_manifest(manifest_path)
    solo = SoloVideos.from_paths(manifest, frame_paths, annotation_paths, frames_fps)
    model, meta = load_classifier(vision_model, device)
    names = meta["label_names"]
    audio_of = {Path(p).stem: p for p in audio_paths}
    used = solo.rows[solo.rows["split"].isin(["train", "val"])]["video_id"]
    with_boxes = all(v in solo.annotations_of for v in used)
    torch.manual_seed(loc["seed"])
    data = {}
    for split in ("train", "val"):
        data[split] = _video_features(model, solo, split, loc, meta["input_size"], names, audio_of, sample_rate,
                                      with_boxes, device)
        log.info("%s: %d solos, %d frames embedded", split, len(data[split]["maps"]),
                 sum(len(m) for m in data[split]["maps"]))
    log.info("training on %s", "the instruments' box cells" if with_boxes else "whole frames (no boxes)")
    head, history, extra = train_correspondence(
        data["train"], data["val"] if data["val"]["maps"] else None, epochs=loc["epochs"],
        steps_per_epoch=loc["steps_per_epoch"], batch_size=loc["batch_size"], lr=loc["lr"],
        weight_decay=loc["weight_decay"], seed=loc["seed"], log=log.info)
    save_correspondence(model_path, head, prototypes=extra["prototypes"], label_names=names,
                        audio_seconds=float(loc["audio_seconds"]), sample_rate=int(sample_rate),
                        input_size=int(meta["input_size"]))
    write_table(metrics_path, pd.DataFrame(history))


def localize_item(item: str, frames_path: str | Path, vision_model: str | Path, loc: Mapping, *, two_players: bool,
                  max_frames: int, frames_fps: float, device: str, outputs: Mapping[str, str],
                  av_model: str | Path | None = None, separated: str | Path | None = None,
                  log: logging.Logger) -> None:
    """Rule ``localization_maps``: every method's maps of one mixture or duet, on the frames
    vision looks at (``vision.max_frames`` of them, as ``vision_labels`` picks them), one
    backbone pass per frame shared by ``cam`` and ``av``.

    Args:
        outputs: method -> the maps file to write.
        av_model, separated: the head of ``train_localization`` and the folder of the
            separator's tracks of this item (for ``av``; ``loc["separator"]`` names it).
    """
    from avsep.localization import write_maps
    from avsep.vision.classifier import load_classifier
    from avsep.vision.maps import BASELINES, baseline_maps, cam_maps, feature_maps

    source = Path(frames_path)
    frames, stamps, _ = read_frames(source / "frames.h5" if source.is_dir() else source, expect={"fps": frames_fps})
    picks = sample_indices(len(frames), max_frames)
    _, height, width, _ = frames.shape
    model, meta = load_classifier(vision_model, device)
    names = meta["label_names"]
    common = {"instruments": names, "timestamps": stamps[picks], "frame_index": picks}
    maps = None
    if {"cam", "av"} & set(outputs):
        maps = feature_maps(model, frames[picks], input_size=meta["input_size"], two_players=two_players,
                            device=device)
    for method, path in outputs.items():
        if method in BASELINES:
            heat = baseline_maps(method, len(picks), len(names), height=height, width=width,
                                 sigma=loc["center_sigma"])
            write_maps(path, heat, method=method, **common, center_sigma=float(loc["center_sigma"]))
        elif method == "cam":
            write_maps(path, cam_maps(model, maps, len(names), height=height, width=width), method=method, **common,
                       vision_model=str(vision_model))
        elif method == "av":
            heat, named = _av(maps, av_model, separated, names, stamps[picks], height, width)
            write_maps(path, heat, method=method, **common, separator=str(loc["separator"]),
                       tracks=",".join(named))
            log.info("%s: av from the tracks of %s; the other instruments from their training prototypes",
                     item, ", ".join(named) or "no instrument")
        else:
            raise InputError(f"unknown localization method {method!r}")
    log.info("%s: %d frames, %d instruments, methods %s", item, len(picks), len(names), ", ".join(outputs))


def _av(maps, av_model, separated, names, times, height, width):
    from avsep.separation import read_separation
    from avsep.vision.correspondence import audio_features, av_maps, load_correspondence

    head, ckpt = load_correspondence(av_model, names)
    info, tracks = read_separation(separated)
    rate = int(info.get("sample_rate", ckpt["sample_rate"]))
    audio = {}
    for inst, _, wave in tracks:
        if inst in names and not np.allclose(wave, 0):
            audio[list(names).index(inst)] = audio_features(wave, rate, times, ckpt["audio_seconds"])
    heat = av_maps(head, maps, audio, ckpt["prototypes"], len(names), height=height, width=width)
    return heat, [names[k] for k in sorted(audio)]


def item_truth(item: str, maps: Mapping, *, manifest: pd.DataFrame, annotations: Mapping[str, pd.DataFrame],
               coco: Mapping[str, pd.DataFrame], mixture_dir: str | Path | None, tolerance: float) -> list:
    """The boxes of an item's map frames: a COCO file's (``coco``, scaled from each image
    to the frame), else its sources' or its own box files."""
    from avsep.localization import frame_truth, mixture_truth, video_truth

    _, _, height, width = maps["maps"].shape
    times = maps["timestamps"]
    if item in coco:
        rows = coco[item].copy()
        rows[["x1", "x2"]] = rows[["x1", "x2"]].mul(width / rows["width"], axis=0)
        rows[["y1", "y2"]] = rows[["y1", "y2"]].mul(height / rows["height"], axis=0)
        return [r[["instrument", "x1", "y1", "x2", "y2"]] for r in frame_truth(rows, times, tolerance=tolerance)]
    sizes = {r["video_id"]: (int(r["width"]), int(r["height"])) for _, r in manifest.iterrows()}
    if mixture_dir is not None:
        meta = json.loads((Path(mixture_dir) / "mixture.json").read_text())
        return mixture_truth(meta, annotations, sizes, times, frame_width=width, frame_height=height,
                             tolerance=tolerance)
    if item not in annotations:
        return [pd.DataFrame(columns=["instrument", "x1", "y1", "x2", "y2"])] * len(times)
    return video_truth(annotations[item], sizes[item], times, frame_width=width, frame_height=height,
                       tolerance=tolerance)


def evaluate_localization(map_paths: Mapping[str, Sequence[str]], *, manifest_path: str | Path,
                          annotation_paths: Sequence[str], mixture_dirs: Mapping[str, str], loc: Mapping,
                          frames_fps: float, rows_path: str | Path, summary_path: str | Path,
                          markdown_path: str | Path, plot_path: str | Path, log: logging.Logger) -> pd.DataFrame:
    """Rule ``evaluate_localization``: every method's maps against the boxes, one row per
    frame and instrument, the table per method (:func:`avsep.localization.summarize`), its
    Markdown and the success curves.

    Args:
        map_paths: method -> its maps files (``results/localization/<method>/<item>.h5``).
        mixture_dirs: item -> its mixture folder, for the test mixtures.
    """
    from avsep.dataset import read_manifest
    from avsep.localization import read_coco, read_maps, score_item, summarize
    from avsep.vision.annotations import read_annotations

    manifest = read_manifest(manifest_path)
    annotations = {Path(p).stem: read_annotations(p) for p in annotation_paths}
    items = sorted({Path(p).stem for paths in map_paths.values() for p in paths})
    names = sorted(manifest[manifest["kind"] == "solo"]["labels"].unique())
    coco = read_coco(loc["annotations"], items, names) if loc["annotations"] else {}
    tolerance = 0.5 / frames_fps
    rows = []
    for method, paths in map_paths.items():
        for path in paths:
            item = Path(path).stem
            maps = read_maps(path)
            truth = item_truth(item, maps, manifest=manifest, annotations=annotations, coco=coco,
                               mixture_dir=mixture_dirs.get(item), tolerance=tolerance)
            rows.append(score_item(item, method, maps, truth, fraction=loc["max_fraction"]))
        log.info("%s: %d items scored", method, len(paths))
    from avsep.files import atomic_path

    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if table.empty or not table["present"].any():
        # A dataset without boxes: the maps are made (and shown), there is nothing to score.
        log.warning("no map frame has a box to score against: give <dataset>/annotations/<video_id>.tsv or "
                    "localization.annotations (a COCO file) to score the maps")
        columns = ["item", "method", "frame", "time", "instrument", "present", "box_fraction", "ciou_median",
                   "ciou_max_fraction", "nsa"]
        write_table(rows_path, pd.DataFrame(columns=columns))
        summary = pd.DataFrame({"method": list(map_paths), "pairs": 0, "items": 0})
        write_table(summary_path, summary)
        with atomic_path(markdown_path) as tmp:
            tmp.write_text("# Localization\n\nNo ground-truth boxes for these items, so the maps in "
                           "`results/localization/<method>/` are not scored. Give the dataset's "
                           "`annotations/<video_id>.tsv` files or `localization.annotations` (a COCO file).\n")
        plot_success_curves(table, [], plot_path)
        return summary
    summary = summarize(table, seed=loc["seed"])
    write_table(rows_path, table)
    write_table(summary_path, summary)
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(summary_markdown(summary, loc["max_fraction"]) + per_instrument_markdown(table, list(map_paths)))
    plot_success_curves(table, list(map_paths), plot_path)
    return summary


def summary_markdown(summary: pd.DataFrame, fraction: float) -> str:
    """The table per method, with 95 % intervals over items."""
    def cell(row, key, digits=2):
        value = row[key]
        if not np.isfinite(value):
            return "n/a"
        lo, hi = row.get(f"{key}_lo", np.nan), row.get(f"{key}_hi", np.nan)
        return f"{value:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(lo) else f"{value:.{digits}f}"

    head = (f"| method | cIoU@0.5 ({fraction:g}·max) | AUC ({fraction:g}·max) | cIoU@0.5 (median) | AUC (median) "
            "| mean cIoU (max) | NSA | pairs | items |\n|---|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {r['method']} | {cell(r, 'ciou50_max_fraction')} | {cell(r, 'auc_max_fraction')} | "
        f"{cell(r, 'ciou50_median')} | {cell(r, 'auc_median')} | {cell(r, 'ciou_max_fraction')} | {cell(r, 'nsa')} | "
        f"{int(r['pairs'])} | {int(r['items'])} |\n"
        for _, r in summary.iterrows())
    first = summary.iloc[0]
    note = (f"\nClass-aware: each instrument's map against its own boxes, on the frames vision looks at. "
            f"Positives: pixels at or above {fraction:g} of the map's maximum, or the top half of the map "
            f"(median). 95 % intervals from resampling whole items. NSA: the share of an absent instrument's "
            f"map at or below 0.2. The boxes cover {100 * first['mean_box_fraction']:.1f} % of a frame on "
            f"average. The median rule makes half of a frame positive, so even a perfect map of distinct "
            f"values reaches at most cIoU {first['median_cap_ciou']:.2f} on average (twice the box's share), "
            f"and cIoU 0.5 on {first['median_cap_ciou50']:.2f} of the pairs: that is the rule's cap here, "
            f"and why the table's threshold is a fraction of the maximum.\n")
    return "# Localization\n\n" + head + body + note


def per_instrument_markdown(table: pd.DataFrame, methods: Sequence[str]) -> str:
    """cIoU@0.5 at the fraction-of-maximum rule per instrument and method: where the maps
    fail."""
    present = table[table["present"]]
    shares = present.assign(hit=present["ciou_max_fraction"] >= 0.5).pivot_table(
        index="instrument", columns="method", values="hit", aggfunc="mean")
    counts = present[present["method"] == methods[0]].groupby("instrument").size()
    head = "| instrument | pairs | " + " | ".join(methods) + " |\n|---|---|" + "---|" * len(methods) + "\n"
    body = "".join(f"| {inst} | {int(counts.get(inst, 0))} | "
                   + " | ".join(f"{shares.loc[inst, m]:.2f}" if m in shares.columns else "n/a" for m in methods)
                   + " |\n" for inst in shares.index)
    return "\n## cIoU@0.5 per instrument (fraction of the maximum)\n\n" + head + body


def plot_success_curves(table: pd.DataFrame, methods: Sequence[str], path) -> None:
    """The success rate (share of pairs with cIoU >= t) against t, per method and rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from avsep.localization import AUC_THRESHOLDS, THRESHOLD_RULES

    present = table[table["present"]] if len(table) else table
    fig, axes = plt.subplots(1, len(THRESHOLD_RULES), figsize=(9, 3.6), sharey=True)
    if not methods:
        axes[0].text(0.5, 0.5, "no ground-truth boxes: nothing scored", ha="center", transform=axes[0].transAxes)
    for ax, rule in zip(axes, THRESHOLD_RULES):
        for method in methods:
            values = present.loc[present["method"] == method, f"ciou_{rule}"].to_numpy(np.float64)
            ax.plot(AUC_THRESHOLDS, [(values >= t).mean() for t in AUC_THRESHOLDS], marker=".", label=method)
        ax.set_xlabel("cIoU threshold t")
        ax.set_title(f"positives: {rule.replace('_', ' ')}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of (frame, instrument) with cIoU >= t")
    if methods:
        axes[0].legend()
    fig.tight_layout()
    from avsep.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def showcase_localization(meta: Mapping, map_paths: Sequence[str], annotation_paths: Sequence[str],
                          manifest_path: str | Path, frames: np.ndarray, truth: Sequence[str]) -> bytes:
    """The showcase page's overlays: each method's maps (``map_paths``) of a mixture's
    middle map frame, for its true instruments, with their boxes."""
    from avsep.dataset import read_manifest
    from avsep.localization import mixture_truth, read_maps
    from avsep.report.showcase import localization_overlays
    from avsep.vision.annotations import read_annotations

    loaded = [read_maps(p) for p in map_paths]
    k = len(loaded[0]["frame_index"]) // 2
    frame = frames[int(loaded[0]["frame_index"][k])]
    manifest = read_manifest(manifest_path)
    sizes = {r["video_id"]: (int(r["width"]), int(r["height"])) for _, r in manifest.iterrows()}
    annotations = {Path(p).stem: read_annotations(p) for p in annotation_paths}
    boxes = None
    if all(s["video_id"] in annotations for s in meta["sources"]):
        boxes = mixture_truth(meta, annotations, sizes, [loaded[0]["timestamps"][k]], frame_width=frame.shape[1],
                              frame_height=frame.shape[0], tolerance=np.inf)[0]
    rows = [(m["attrs"]["method"], m["maps"][k], m["instruments"]) for m in loaded]
    return localization_overlays(frame, rows, truth, boxes)
