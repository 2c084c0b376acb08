"""Stage 3 (method ``detector``): a torchvision Faster R-CNN, in the seed's detection format.

Each detection is a row ``frame_index, class_id, score, x1, y1, x2, y2`` (class ids count
instruments from 0, in alphabetical order; boxes in pixels of the frame). Detections pass a
score threshold and non-maximum suppression, per class inside the model and across classes
after it, since one player holds one instrument. Per video, :func:`top_detections` keeps
the instruments seen most surely and their mean boxes, after the seed's ``getTopDetections``.
Weights are only read from local files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from avsep.errors import InputError
from avsep.files import read_weights

__all__ = ["DETECTION_COLUMNS", "build_detector", "load_detector", "detect", "top_detections"]

DETECTION_COLUMNS = ["frame_index", "class_id", "score", "x1", "y1", "x2", "y2"]


def build_detector(n_classes: int, *, score_threshold: float = 0.5, nms_iou: float = 0.5):
    """``fasterrcnn_mobilenet_v3_large_320_fpn`` with ``n_classes`` instruments (plus the
    background class), randomly initialised: no weights are downloaded."""
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    model = fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=n_classes + 1,
        box_score_thresh=score_threshold, box_nms_thresh=nms_iou,
    )
    return model.eval()


def load_detector(path: str | Path, n_classes: int, **kwargs):
    """Build the detector and load a local state dict into it.

    Raises:
        InputError: the file is missing or unreadable, or its class count differs.
    """
    state = read_weights(path)
    key = "roi_heads.box_predictor.cls_score.weight"
    if key not in state:
        raise InputError(f"vision.weights: {path} is not a Faster R-CNN checkpoint (no {key})")
    found = state[key].shape[0] - 1
    if found != n_classes:
        raise InputError(f"vision.weights: {path} detects {found} instrument classes, the dataset has {n_classes}")
    model = build_detector(n_classes, **kwargs)
    model.load_state_dict(state)
    return model.eval()


@torch.no_grad()
def detect(model, frames: np.ndarray, *, nms_iou: float = 0.5, batch_size: int = 8) -> pd.DataFrame:
    """Detect instruments in uint8 frames ``(N, H, W, 3)``; returns rows ``DETECTION_COLUMNS``."""
    from torchvision.ops import nms

    model.eval()
    rows = []
    for start in range(0, len(frames), batch_size):
        batch = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div_(255)
                 for f in frames[start : start + batch_size]]
        for k, out in enumerate(model(batch)):
            keep = nms(out["boxes"], out["scores"], nms_iou)  # across classes
            for i in keep.tolist():
                x1, y1, x2, y2 = out["boxes"][i].tolist()
                rows.append((start + k, int(out["labels"][i]) - 1, float(out["scores"][i]), x1, y1, x2, y2))
    table = pd.DataFrame(rows, columns=DETECTION_COLUMNS)
    return table.astype({"frame_index": int, "class_id": int})


def top_detections(rows: pd.DataFrame, label_names: Sequence[str], *, frame_width: int, k: int = 2) -> list[dict]:
    """The ``k`` instruments detected most surely over a video, with their mean boxes.

    An instrument's strength is the sum of its best score in each frame (frames where it is
    seen, and how surely). Each kept instrument gets its mean score, its mean box, and its
    position: left or right of the frame's middle by the box centre.
    """
    if rows.empty:
        return []
    best = rows.sort_values("score", ascending=False).groupby(["frame_index", "class_id"]).head(1)
    strength = best.groupby("class_id")["score"].sum().sort_values(ascending=False)
    out = []
    for class_id in strength.index[:k]:
        mine = best[best["class_id"] == class_id]
        box = mine[["x1", "y1", "x2", "y2"]].mean().to_numpy()
        centre = (box[0] + box[2]) / 2
        out.append({
            "instrument": label_names[int(class_id)],
            "score": float(mine["score"].mean()),
            "frames": int(len(mine)),
            "box": [round(float(v), 1) for v in box],
            "position": "left" if centre < frame_width / 2 else "right",
        })
    return out
