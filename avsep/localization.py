"""Where each instrument is: localization maps, their ground-truth boxes and their scores.

A localization map gives, for one frame and one instrument, a value in [0, 1] per pixel of
the frame. Maps are scored against the instrument's boxes with the protocol of the
multi-source sound localization work (Qian et al., ECCV 2020; the class-aware form of DSOL,
Hu et al., NeurIPS 2020):

- **positives** of a map are its pixels at or above a threshold (and above zero: an all-zero
  map predicts nothing). Two threshold rules (:data:`THRESHOLD_RULES`): ``median``, the top
  half of the map's pixels (a map of distinct values: exactly half; a flat one: all of
  it); ``max_fraction``, a fixed fraction of the map's maximum
  (``localization.max_fraction``, 0.5 by default);
- **cIoU** = sum_{i in P} g_i / (sum_i g_i + sum_{i in P, g_i = 0} 1), P the positives and
  g the box mask (:func:`ciou`); a pixel belongs to a box when its centre lies inside it
  (:func:`box_mask`);
- **cIoU@0.5**: the share of (frame, instrument) pairs with cIoU >= 0.5, and the **AUC** of
  the success rate (the share with cIoU >= t) over the 21 thresholds t = 0, 0.05, ..., 1
  (``sklearn.metrics.auc``; :func:`success_auc`);
- **class-aware**: an instrument's map is scored against its own boxes;
- **NSA** (DSOL): for each instrument the frame does not show, the share of its map's pixels
  at or below 0.2 (:func:`nsa`).

Ground truth comes from the dataset's box files (``<dataset>/annotations/<video_id>.tsv``,
:mod:`avsep.vision.annotations`), carried onto a test mixture's side-by-side frames
(:func:`mixture_truth`) or a duet's frames (:func:`video_truth`), or from a COCO-format file
(``localization.annotations``, :func:`read_coco`).

The maps files (:func:`write_maps`, :func:`read_maps`): ``results/localization/<method>/<item>.h5``
with ``maps`` float32 ``(n_frames, n_instruments, height, width)`` aligned with the
item's ``frames.h5`` (``frame_index`` and ``timestamps`` say which of its frames),
``instruments`` and the method's settings as attributes. Values are stored to 1/4096, which
lets gzip shrink smooth maps tenfold; the thresholds of the scores are coarser.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from avsep.errors import InputError
from avsep.files import FORMAT_VERSION, atomic_path, check_cache

__all__ = [
    "THRESHOLD_RULES",
    "AUC_THRESHOLDS",
    "NSA_LEVEL",
    "box_mask",
    "positives",
    "ciou",
    "success_auc",
    "nsa",
    "center_map",
    "write_maps",
    "read_maps",
    "frame_truth",
    "mixture_truth",
    "video_truth",
    "read_coco",
    "score_item",
    "summarize",
]

#: The two threshold rules of the cIoU: ``median`` (top 50 % of the map) and
#: ``max_fraction`` (a fraction of the map's maximum).
THRESHOLD_RULES = ("median", "max_fraction")
#: The cIoU thresholds of the success curve whose area is the AUC.
AUC_THRESHOLDS = np.round(np.linspace(0.0, 1.0, 21), 2)
#: An absent instrument's pixel counts as silent (NSA) at or below this value.
NSA_LEVEL = 0.2
#: Maps are stored to this step (a power of two, exact in float32).
MAP_STEP = 1.0 / 4096


def box_mask(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """The union of ``boxes`` ``(n, 4)`` (``x1, y1, x2, y2`` in pixels, 0 at the frame's
    left and top edges) as a boolean ``(height, width)`` mask: a pixel is inside when its
    centre is."""
    mask = np.zeros((height, width), bool)
    for x1, y1, x2, y2 in np.asarray(boxes, np.float64).reshape(-1, 4):
        c0, c1 = int(np.ceil(x1 - 0.5)), int(np.floor(x2 - 0.5)) + 1
        r0, r1 = int(np.ceil(y1 - 0.5)), int(np.floor(y2 - 0.5)) + 1
        mask[max(r0, 0) : max(r1, 0), max(c0, 0) : max(c1, 0)] = True
    return mask


def positives(heat: np.ndarray, rule: str, fraction: float = 0.5) -> np.ndarray:
    """The predicted-positive pixels of one map under a threshold rule (see the module)."""
    heat = np.asarray(heat, np.float64)
    if rule == "median":
        # The value half way up the sorted map (the common evaluation code's rule): a map
        # of distinct values has exactly its top half positive.
        flat = heat.ravel()
        threshold = float(np.partition(flat, flat.size // 2)[flat.size // 2])
    elif rule == "max_fraction":
        threshold = fraction * float(heat.max())
    else:
        raise InputError(f"threshold rule must be one of {THRESHOLD_RULES}, got {rule!r}")
    return (heat >= threshold) & (heat > 0)


def ciou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """The consensus IoU of a boolean prediction against a boolean box mask (see the module);
    NaN when the frame has no box pixel."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"prediction {predicted.shape} and box mask {truth.shape} differ in shape")
    boxed = int(truth.sum())
    if not boxed:
        return float("nan")
    return float((predicted & truth).sum()) / (boxed + float((predicted & ~truth).sum()))


def success_auc(cious: Sequence[float]) -> float:
    """The area under the success-rate curve: for each t of :data:`AUC_THRESHOLDS`, the share
    of ``cious`` at or above t (NaNs dropped); NaN for none."""
    from sklearn.metrics import auc

    x = np.asarray(cious, np.float64)
    x = x[np.isfinite(x)]
    if not len(x):
        return float("nan")
    success = [(x >= t).mean() for t in AUC_THRESHOLDS]
    return float(auc(AUC_THRESHOLDS, success))


def nsa(heat: np.ndarray, level: float = NSA_LEVEL) -> float:
    """The share of an absent instrument's map at or below ``level``."""
    return float((np.asarray(heat) <= level).mean())


def center_map(height: int, width: int, sigma: float = 0.25) -> np.ndarray:
    """A centred Gaussian over the frame, 1 at the centre, its standard deviation ``sigma``
    of the frame's height and width (the ``center`` baseline)."""
    y = (np.arange(height) + 0.5) / height - 0.5
    x = (np.arange(width) + 0.5) / width - 0.5
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2)).astype(np.float32)


# -- the maps files --------------------------------------------------------------------------
def write_maps(path: str | Path, maps: np.ndarray, *, instruments: Sequence[str], timestamps: Sequence[float],
               frame_index: Sequence[int], method: str, **attrs) -> None:
    """Write one item's maps (see the module), checked: float values in [0, 1], one row of
    ``frame_index`` and ``timestamps`` per frame, one instrument name per map."""
    import h5py

    maps = np.asarray(maps, np.float32)
    if maps.ndim != 4 or maps.shape[1] != len(instruments):
        raise ValueError(f"maps must be (n_frames, {len(instruments)} instruments, H, W), got {maps.shape}")
    if len(timestamps) != len(maps) or len(frame_index) != len(maps):
        raise ValueError(f"{len(maps)} frames of maps, {len(timestamps)} timestamps, {len(frame_index)} indices")
    if maps.size and (not np.isfinite(maps).all() or maps.min() < 0 or maps.max() > 1):
        raise ValueError(f"{method} maps must lie in [0, 1], got [{maps.min()}, {maps.max()}]")
    stored = (np.round(maps / MAP_STEP) * MAP_STEP).astype(np.float32)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as h5:
            chunks = (1, 1, *maps.shape[2:]) if maps.size else None
            h5.create_dataset("maps", data=stored, chunks=chunks, compression="gzip", compression_opts=1,
                              shuffle=True, track_times=False)
            h5.create_dataset("instruments", data=np.array(list(instruments), dtype=h5py.string_dtype()),
                              track_times=False)
            h5.create_dataset("timestamps", data=np.asarray(timestamps, np.float64), track_times=False)
            h5.create_dataset("frame_index", data=np.asarray(frame_index, np.int64), track_times=False)
            h5.attrs["format_version"] = FORMAT_VERSION
            h5.attrs["method"] = method
            for key, value in sorted(attrs.items()):
                h5.attrs[key] = value


def read_maps(path: str | Path) -> dict:
    """Read a maps file: ``{"maps", "instruments", "timestamps", "frame_index", "attrs"}``."""
    import h5py

    with h5py.File(path, "r") as h5:
        attrs = check_cache(path, dict(h5.attrs), kind="localization maps")
        return {"maps": h5["maps"][()], "instruments": [s.decode() if isinstance(s, bytes) else str(s)
                                                         for s in h5["instruments"][()]],
                "timestamps": h5["timestamps"][()], "frame_index": h5["frame_index"][()], "attrs": attrs}


# -- ground truth ------------------------------------------------------------------------------
def frame_truth(boxes: pd.DataFrame, times: Sequence[float], *, tolerance: float) -> list[pd.DataFrame]:
    """The boxes of each time: the rows (``time, instrument, x1, y1, x2, y2``) at the nearest
    annotated time, or none when it is further than ``tolerance`` seconds."""
    if boxes.empty:
        return [boxes] * len(times)
    stamps = np.unique(boxes["time"].to_numpy(np.float64))
    out = []
    for t in np.asarray(times, np.float64):
        nearest = stamps[np.abs(stamps - t).argmin()]
        out.append(boxes[boxes["time"] == nearest] if abs(nearest - t) <= tolerance + 1e-9 else boxes.iloc[:0])
    return out


def _scaled(rows: pd.DataFrame, sx: float, sy: float, dx: float = 0.0) -> pd.DataFrame:
    rows = rows.copy()
    rows[["x1", "x2"]] = rows[["x1", "x2"]] * sx + dx
    rows[["y1", "y2"]] = rows[["y1", "y2"]] * sy
    return rows


def mixture_truth(meta: Mapping, annotations: Mapping[str, pd.DataFrame], source_sizes: Mapping[str, tuple[int, int]],
                  times: Sequence[float], *, frame_width: int, frame_height: int, tolerance: float) -> list[pd.DataFrame]:
    """The boxes on a test mixture's side-by-side frames at ``times`` (seconds into the
    mixture), from its sources' box files.

    Each source (``meta["sources"]``: ``video_id``, ``start``, ``position``) was cut from
    ``start`` and resized to one half of the frame: its box at ``start + t`` is scaled from
    its video's pixels (``source_sizes[video_id] = (width, height)``) to the half, and the
    right source's is moved by the half's width.

    Returns:
        per time, the rows ``instrument, x1, y1, x2, y2`` in frame pixels.
    """
    half = frame_width / 2
    per_side = []
    for source in meta["sources"]:
        vid = source["video_id"]
        if vid not in annotations:
            raise InputError(f"{meta.get('mix_id', 'mixture')}: no box annotations for its source {vid}")
        width, height = source_sizes[vid]
        shifted = [t + float(source["start"]) for t in times]
        dx = half if source["position"] == "right" else 0.0
        per_side.append([_scaled(rows, half / width, frame_height / height, dx)
                         for rows in frame_truth(annotations[vid], shifted, tolerance=tolerance)])
    return [pd.concat(rows, ignore_index=True)[["instrument", "x1", "y1", "x2", "y2"]] for rows in zip(*per_side)]


def video_truth(annotations: pd.DataFrame, size: tuple[int, int], times: Sequence[float], *, frame_width: int,
                frame_height: int, tolerance: float) -> list[pd.DataFrame]:
    """The boxes of a video's own frames (a duet) at ``times``, scaled from its pixels
    (``size = (width, height)``) to the frames'."""
    width, height = size
    return [_scaled(rows, frame_width / width, frame_height / height)[["instrument", "x1", "y1", "x2", "y2"]]
            for rows in frame_truth(annotations, times, tolerance=tolerance)]


def _coco_item(image: Mapping) -> tuple[str, float]:
    """An image's item and time: its ``item`` (or ``video_id``) and ``time`` fields, or a
    ``file_name`` ``<item>/<seconds>.<ext>``."""
    item = image.get("item", image.get("video_id"))
    time = image.get("time")
    if item is None or time is None:
        name = Path(str(image.get("file_name", "")))
        try:
            item, time = name.parent.name, float(name.stem)
        except ValueError:
            item = None
    if not item:
        raise InputError(f"COCO image {image.get('id')!r}: give it 'item' and 'time' fields, or a file_name "
                         f"'<item>/<seconds>.jpg' (got {image.get('file_name')!r})")
    return str(item), float(time)


def read_coco(path: str | Path, items: Sequence[str], instruments: Sequence[str]) -> dict[str, pd.DataFrame]:
    """A user's boxes in COCO format (``images``, ``annotations``, ``categories``; ``bbox`` =
    ``[x, y, width, height]`` in the image's pixels), the format Qian et al. ship for
    AudioSet-instrument.

    Each image names an item of this run and a time (:func:`_coco_item`) and gives its
    ``width`` and ``height``, which the boxes are checked against; a category's ``name`` must
    be one of ``instruments``.

    Returns:
        per item, the rows ``time, instrument, x1, y1, x2, y2, width, height`` (the image's
        size, to scale the boxes to the item's frames).

    Raises:
        InputError: the file is missing or not COCO; an annotation names an unknown image
            or category; an image names an item the run does not have; a category is not
            an instrument; a box is empty or leaves its image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"localization.annotations: {path} does not exist")
    try:
        coco = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"localization.annotations: {path} is not JSON ({exc})") from None
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(coco.get(k), list)]
    if missing:
        raise InputError(f"localization.annotations: {path} lacks the COCO list(s) {missing}")
    categories = {c["id"]: c["name"] for c in coco["categories"]}
    foreign = sorted(set(categories.values()) - set(instruments))
    if foreign:
        raise InputError(f"{path}: categories {foreign} are not instruments of this dataset {list(instruments)}")
    images = {}
    for image in coco["images"]:
        item, time = _coco_item(image)
        if item not in items:
            raise InputError(f"{path}: image {image.get('id')!r} names item {item!r}, which this run does not "
                             f"localize (its mixtures and duets: {', '.join(list(items)[:5])}, ...)")
        if not image.get("width") or not image.get("height"):
            raise InputError(f"{path}: image {image.get('id')!r} has no width and height")
        images[image["id"]] = (item, time, float(image["width"]), float(image["height"]))
    rows: dict[str, list] = {}
    for k, ann in enumerate(coco["annotations"]):
        if ann.get("image_id") not in images:
            raise InputError(f"{path}: annotation {ann.get('id', k)!r} names unknown image {ann.get('image_id')!r}")
        if ann.get("category_id") not in categories:
            raise InputError(f"{path}: annotation {ann.get('id', k)!r} names unknown category "
                             f"{ann.get('category_id')!r}")
        item, time, width, height = images[ann["image_id"]]
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w <= 0 or h <= 0:
            raise InputError(f"{path}: annotation {ann.get('id', k)!r} has an empty box {ann['bbox']}")
        if x < 0 or y < 0 or x + w > width + 1e-6 or y + h > height + 1e-6:
            raise InputError(f"{path}: annotation {ann.get('id', k)!r}: box {ann['bbox']} leaves its "
                             f"{width:g} x {height:g} image")
        rows.setdefault(item, []).append((time, categories[ann["category_id"]], x, y, x + w, y + h, width, height))
    columns = ["time", "instrument", "x1", "y1", "x2", "y2", "width", "height"]
    return {item: pd.DataFrame(r, columns=columns) for item, r in rows.items()}


# -- scores ------------------------------------------------------------------------------------
def score_item(item: str, method: str, maps: Mapping, truth: Sequence[pd.DataFrame], *,
               fraction: float = 0.5) -> pd.DataFrame:
    """The rows of one item's maps against its boxes.

    Args:
        maps: what :func:`read_maps` returns.
        truth: per map frame, its box rows (``instrument, x1, y1, x2, y2`` in frame pixels);
            a frame without any is not scored.

    Returns:
        one row per frame and instrument: ``item, method, frame, time, instrument, present``
        and, for a present instrument, ``ciou_median`` and ``ciou_max_fraction``, for an
        absent one ``nsa``.
    """
    heat = maps["maps"]
    if len(truth) != len(heat):
        raise ValueError(f"{item}: {len(heat)} frames of maps but boxes for {len(truth)}")
    _, _, height, width = heat.shape
    out = []
    for f, (rows, t) in enumerate(zip(truth, maps["timestamps"])):
        if rows.empty:
            continue
        shown = set(rows["instrument"])
        for k, inst in enumerate(maps["instruments"]):
            row = {"item": item, "method": method, "frame": int(maps["frame_index"][f]), "time": float(t),
                   "instrument": inst, "present": inst in shown}
            if inst in shown:
                mask = box_mask(rows.loc[rows["instrument"] == inst, ["x1", "y1", "x2", "y2"]].to_numpy(), height, width)
                row["box_fraction"] = float(mask.mean())
                for rule in THRESHOLD_RULES:
                    row[f"ciou_{rule}"] = ciou(positives(heat[f, k], rule, fraction), mask)
            else:
                row["nsa"] = nsa(heat[f, k])
            out.append(row)
        missing = shown - set(maps["instruments"])
        if missing:
            raise InputError(f"{item}: the boxes name {sorted(missing)}, which the {method} maps do not have")
    return pd.DataFrame(out)


def summarize(rows: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """One row per method: cIoU@0.5 and AUC under each threshold rule, the mean cIoU, NSA,
    the cap the median rule puts on any map of distinct values (``median_cap_ciou50``, the
    share of pairs that could reach cIoU 0.5; ``median_cap_ciou``, the mean of the highest
    cIoU each pair allows), and 95 % intervals from resampling whole
    items (:func:`avsep.stats.cluster_bootstrap` for means; the same draws of items for
    cIoU@0.5 and AUC)."""
    from avsep.stats import LEVEL, N_BOOT, cluster_bootstrap

    out = []
    for method, table in rows.groupby("method", sort=False):
        present = table[table["present"]]
        absent = table[~table["present"]]
        items, index = np.unique(present["item"].to_numpy(), return_inverse=True)
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, len(items), (N_BOOT, len(items)))
        pairs_per_item = np.bincount(index, minlength=len(items)).astype(np.float64)
        q = [(1 - LEVEL) / 2, (1 + LEVEL) / 2]
        row = {"method": method, "pairs": len(present), "items": len(items), "absent_maps": len(absent)}
        for rule in THRESHOLD_RULES:
            values = present[f"ciou_{rule}"].to_numpy(np.float64)
            row[f"ciou50_{rule}"] = float(np.mean(values >= 0.5)) if len(values) else float("nan")
            row[f"auc_{rule}"] = success_auc(values)
            # Per item, the pairs at or above each threshold; a draw of items sums them.
            hits = np.stack([np.bincount(index, weights=(values >= t).astype(np.float64), minlength=len(items))
                             for t in AUC_THRESHOLDS], axis=1)  # (items, thresholds)
            if len(items):
                curves = hits[draws].sum(axis=1) / pairs_per_item[draws].sum(axis=1)[:, None]
                fifty = int(np.flatnonzero(AUC_THRESHOLDS == 0.5)[0])
                row[f"ciou50_{rule}_lo"], row[f"ciou50_{rule}_hi"] = np.quantile(curves[:, fifty], q)
                row[f"auc_{rule}_lo"], row[f"auc_{rule}_hi"] = np.quantile(
                    np.trapezoid(curves, AUC_THRESHOLDS, axis=1), q)
            else:
                for key in ("ciou50", "auc"):
                    row[f"{key}_{rule}_lo"] = row[f"{key}_{rule}_hi"] = float("nan")
            row[f"ciou_{rule}"], row[f"ciou_{rule}_lo"], row[f"ciou_{rule}_hi"] = cluster_bootstrap(
                values, present["item"].to_numpy(), seed=seed)
        row["nsa"], row["nsa_lo"], row["nsa_hi"] = (cluster_bootstrap(absent["nsa"].to_numpy(np.float64),
                                                                       absent["item"].to_numpy(), seed=seed)
                                                    if len(absent) else (np.nan,) * 3)
        # The median rule makes half the frame positive: a map of distinct values, however
        # good, then has cIoU at most box / (half the frame) = 2 x the box's share.
        fractions = present["box_fraction"].to_numpy(np.float64)
        caps = np.minimum(1.0, 2 * fractions)
        row["median_cap_ciou50"] = float(np.mean(caps >= 0.5)) if len(fractions) else np.nan
        row["median_cap_ciou"] = float(caps.mean()) if len(fractions) else np.nan
        row["mean_box_fraction"] = float(fractions.mean()) if len(fractions) else np.nan
        out.append(row)
    return pd.DataFrame(out)
