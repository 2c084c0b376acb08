"""Stage 2 (method ``detector``): a torchvision Faster R-CNN (Ren et al. 2015), in the seed's
detection format.

Each detection is a row ``frame_index, class_id, score, x1, y1, x2, y2`` (class ids count
instruments from 0, in alphabetical order; boxes in pixels of the frame). Detections pass a
score threshold and non-maximum suppression, per class inside the model and across classes
after it, since one player holds one instrument. Per video, :func:`top_detections` keeps
the instruments seen most surely and their mean boxes, after the seed's ``getTopDetections``.
Weights are only read from local files: a bare state dict of the torchvision model, or a
checkpoint of our own (:func:`save_detector`), which also records the class names.

With no weights, :func:`train_detector` trains the detector on solo frames and the boxes of
``<dataset>/annotations/<video_id>.tsv`` (:mod:`avsep.vision.annotations`): the demo
generator writes those, since it knows where it drew each player.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from avsep.errors import InputError
from avsep.files import read_checkpoint, state_dict_of
from avsep.vision.backbones import build_backbone
from avsep.vision.labels import present_instruments
from avsep.vision.training import for_training_from_scratch

__all__ = [
    "DETECTION_COLUMNS",
    "DETECTOR_BACKBONES",
    "build_detector",
    "load_detector",
    "save_detector",
    "detect",
    "top_detections",
    "train_detector",
    "box_iou",
    "evaluate_detector",
    "describe_detections",
    "side_detections",
]

DETECTION_COLUMNS = ["frame_index", "class_id", "score", "x1", "y1", "x2", "y2"]


#: Detector backbones: torchvision's MobileNetV3-Large FPN detector from random weights, or
#: the ImageNet-pretrained EfficientNet-Lite0 trunk (frozen) under a small feature pyramid.
DETECTOR_BACKBONES = ("mobilenet_v3_large_fpn", "efficientnet_lite0")

# The last EfficientNet-Lite0 block at stride 16 (112 channels); the trunk ends at stride 32.
_LITE_STRIDE16_BLOCK = 10


class LiteDetectorBackbone(torch.nn.Module):
    """EfficientNet-Lite0's convolutional trunk, frozen with its ImageNet weights, and a
    feature pyramid (``torchvision.ops.FeaturePyramidNetwork``) over its stride-16 and
    stride-32 maps: what torchvision's ``FasterRCNN`` needs of a backbone (``out_channels``
    and an ordered dict of feature maps). Only the pyramid and the detection heads learn.
    """

    def __init__(self, *, pretrained: bool = True, channels: int = 128):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        self.trunk = build_backbone("efficientnet_lite0", pretrained=pretrained).net
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        self.fpn = FeaturePyramidNetwork([112, 1280], channels)
        self.out_channels = channels

    def train(self, mode: bool = True):
        super().train(mode)
        self.trunk.eval()  # frozen: BatchNorm keeps its ImageNet statistics
        return self

    def forward(self, x):
        from collections import OrderedDict

        net = self.trunk
        with torch.no_grad():
            x = net._swish(net._bn0(net._conv_stem(x)))
            maps = OrderedDict()
            for idx, block in enumerate(net._blocks):
                x = block(x)
                if idx == _LITE_STRIDE16_BLOCK:
                    maps["0"] = x
            maps["1"] = net._swish(net._bn1(net._conv_head(x)))
        return self.fpn(maps)


def build_detector(n_classes: int, *, score_threshold: float = 0.5, nms_iou: float = 0.5,
                   input_size: int = 320, backbone: str = "mobilenet_v3_large_fpn", pretrained: bool = True):
    """A Faster R-CNN with ``n_classes`` instruments (plus the background class).

    Args:
        input_size: the shorter image side the model resizes to (torchvision's default is
            320; smaller is quadratically faster on a CPU).
        backbone: ``mobilenet_v3_large_fpn``: ``fasterrcnn_mobilenet_v3_large_320_fpn``,
            randomly initialised (no weights are downloaded); ``efficientnet_lite0``:
            :class:`LiteDetectorBackbone` under torchvision's RPN and box heads, with anchors
            of 32-256 pixels at aspect ratios 0.33-3 (thin instruments).
        pretrained: ``efficientnet_lite0`` only: the packaged ImageNet weights (``False``
            when a checkpoint is about to be loaded over them).
    """
    common = dict(
        box_score_thresh=score_threshold, box_nms_thresh=nms_iou,
        min_size=int(input_size), max_size=int(input_size) * 2,
        # One or two players per frame: a few hundred proposals are plenty, and cost less.
        rpn_pre_nms_top_n_train=300, rpn_post_nms_top_n_train=150, box_batch_size_per_image=64,
    )
    if backbone not in DETECTOR_BACKBONES:
        raise InputError(f"vision.detector.backbone must be one of {DETECTOR_BACKBONES}, got {backbone!r}")
    if backbone == "efficientnet_lite0":
        from torchvision.models.detection import FasterRCNN
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.ops import MultiScaleRoIAlign

        anchors = AnchorGenerator(sizes=((32, 64), (128, 256)), aspect_ratios=((0.33, 0.5, 1.0, 2.0, 3.0),) * 2)
        model = FasterRCNN(
            LiteDetectorBackbone(pretrained=pretrained), num_classes=n_classes + 1,
            rpn_anchor_generator=anchors, box_roi_pool=MultiScaleRoIAlign(["0", "1"], 7, 2),
            # EfficientNet-Lite's input scaling, (x * 255 - 127) / 128.
            image_mean=[127 / 255] * 3, image_std=[128 / 255] * 3,
            rpn_pre_nms_top_n_test=150, rpn_post_nms_top_n_test=100, **common,
        )
        return model.eval()
    from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn

    model = fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=n_classes + 1, **common,
    )
    return model.eval()


def save_detector(path: str | Path, model, *, label_names: Sequence[str], input_size: int, **extra) -> None:
    """Save a detector with its class names, so that :func:`load_detector` can check them."""
    from avsep.files import save_torch

    backbone = "efficientnet_lite0" if isinstance(model.backbone, LiteDetectorBackbone) else "mobilenet_v3_large_fpn"
    save_torch(path, {"state_dict": model.state_dict(), "method": "detector", "label_names": list(label_names),
                      "input_size": int(input_size), "backbone": backbone, **extra})


def load_detector(path: str | Path | dict, n_classes: int, *, label_names: Sequence[str] | None = None,
                  **kwargs):
    """Build the detector and load a local state dict into it.

    Args:
        path: a bare state dict or a checkpoint of :func:`save_detector`, as a file or as
            already read by :func:`avsep.files.read_checkpoint`.
        label_names: when given and the checkpoint records its own, they must match.
        **kwargs: passed to :func:`build_detector` (thresholds, input size).

    Raises:
        InputError: the file is missing or unreadable, or its classes differ.
    """
    raw = path if isinstance(path, dict) else read_checkpoint(path)
    where = "the checkpoint" if isinstance(path, dict) else path
    if isinstance(raw, dict) and raw.get("method") == "detector":
        saved = raw["label_names"]
        if label_names is not None and list(label_names) != list(saved):
            raise InputError(f"vision.weights: {where} detects {saved}, the config asks for {list(label_names)}")
        kwargs.setdefault("input_size", raw["input_size"])
    state = state_dict_of(raw)
    key = "roi_heads.box_predictor.cls_score.weight"
    if key not in state:
        raise InputError(f"vision.weights: {where} is not a Faster R-CNN checkpoint (no {key})")
    found = state[key].shape[0] - 1
    if found != n_classes:
        raise InputError(f"vision.weights: {where} detects {found} instrument classes, the dataset has {n_classes}")
    # The tensors say which backbone made them, in our checkpoints and in bare state dicts.
    if any(k.startswith("backbone.trunk.") for k in state):
        kwargs["backbone"] = "efficientnet_lite0"
    model = build_detector(n_classes, pretrained=False, **kwargs)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise InputError(f"vision.weights: {where} does not fit the {kwargs.get('backbone', 'mobilenet_v3_large_fpn')} "
                         f"detector: {str(err).splitlines()[0]}") from None
    return model.eval()


@torch.no_grad()
def detect(model, frames: np.ndarray, *, nms_iou: float = 0.5, batch_size: int = 8,
           device: str = "cpu") -> pd.DataFrame:
    """Detect instruments in uint8 frames ``(N, H, W, 3)``; returns rows ``DETECTION_COLUMNS``."""
    from torchvision.ops import nms

    model.eval()
    rows = []
    for start in range(0, len(frames), batch_size):
        batch = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div_(255).to(device)
                 for f in frames[start : start + batch_size]]
        for k, out in enumerate(model(batch)):
            out = {k: v.cpu() for k, v in out.items()}
            keep = nms(out["boxes"], out["scores"], nms_iou)  # across classes
            for i in keep.tolist():
                x1, y1, x2, y2 = out["boxes"][i].tolist()
                rows.append((start + k, int(out["labels"][i]) - 1, float(out["scores"][i]), x1, y1, x2, y2))
    table = pd.DataFrame(rows, columns=DETECTION_COLUMNS)
    return table.astype({"frame_index": int, "class_id": int})


def _ranked(rows: pd.DataFrame) -> list[tuple[int, float, pd.DataFrame]]:
    """Instruments by strength, the sum of their best score in each frame (frames where
    they are seen, and how surely): ``(class_id, strength, their best rows)``, strongest first."""
    best = rows.sort_values("score", ascending=False).groupby(["frame_index", "class_id"]).head(1)
    strength = best.groupby("class_id")["score"].sum().sort_values(ascending=False)
    return [(int(c), float(v), best[best["class_id"] == c]) for c, v in strength.items()]


def _entry(label: str, mine: pd.DataFrame, position: str | None, frame_width: int) -> dict:
    """One pooled instrument: its mean score and mean box, and its side (by box centre when
    ``position`` is None)."""
    box = mine[["x1", "y1", "x2", "y2"]].mean().to_numpy()
    if position is None:
        position = "left" if (box[0] + box[2]) / 2 < frame_width / 2 else "right"
    return {"instrument": label, "score": float(mine["score"].mean()), "frames": int(len(mine)),
            "box": [round(float(v), 1) for v in box], "position": position}


def top_detections(rows: pd.DataFrame, label_names: Sequence[str], *, frame_width: int, k: int = 2) -> list[dict]:
    """The ``k`` instruments detected most surely over a video, with their mean boxes.

    An instrument's strength is the sum of its best score in each frame (frames where it is
    seen, and how surely). Each kept instrument gets its mean score, its mean box, and its
    position: left or right of the frame's middle by the box centre.
    """
    if rows.empty:
        return []
    return [_entry(label_names[c], mine, None, frame_width) for c, _, mine in _ranked(rows)[:k]]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def evaluate_detector(model, images: np.ndarray, truth, *, device: str = "cpu") -> dict:
    """Per-frame top-1 predictions on held-out frames: ``{"pred", "true", "acc", "iou"}``.
    ``pred`` is the surest detection's class (-1 where nothing was detected), scored against
    the frame's first box; ``iou`` is that detection's mean IoU with the true box."""
    rows = detect(model, images, device=device)
    best = rows.sort_values("score", ascending=False).groupby("frame_index").head(1).set_index("frame_index")
    pred = np.full(len(images), -1)
    ious = np.zeros(len(images))
    for i, (boxes, classes) in enumerate(truth):
        if i in best.index:
            pred[i] = int(best.loc[i, "class_id"])
            ious[i] = box_iou(best.loc[i, ["x1", "y1", "x2", "y2"]].to_numpy(float), boxes[0])
    true = np.array([c[0] for _, c in truth])
    return {"pred": pred, "true": true, "acc": float((pred == true).mean()) if len(true) else float("nan"),
            "iou": float(ious.mean()) if len(true) else float("nan")}


def train_detector(
    images: np.ndarray,
    targets: Sequence[tuple[np.ndarray, np.ndarray]],
    n_classes: int,
    *,
    input_size: int = 160,
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
    backbone: str = "mobilenet_v3_large_fpn",
    device: str = "cpu",
    val: tuple[np.ndarray, Sequence] | None = None,
    log: Callable[[str], None] | None = None,
):
    """Train the detector on frames and their boxes: every layer from random weights
    (``mobilenet_v3_large_fpn``), or the heads and pyramid over the frozen pretrained trunk
    (``efficientnet_lite0``).

    Augmentation (seeded): horizontal flips with their boxes, colour jitter (stronger, with
    random greyscale, for the pretrained trunk), and a random shorter side in 80-120% of
    ``input_size``. One-cycle learning
    rate, AdamW. The epoch with the best validation accuracy (then IoU) is kept.

    Args:
        images: uint8 ``(N, H, W, 3)``; targets: per image ``(boxes, class ids)`` as
            :func:`avsep.vision.annotations.frame_boxes` gives them.
        val: optional held-out ``(images, targets)``; up to 48 of its frames, spread
            evenly, are scored after every epoch (the caller scores all of them at the end).

    Returns:
        the model (eval mode) and per-epoch ``{"epoch", "loss", "val_acc", "val_iou"}``.
    """
    from torchvision.transforms import v2

    if len(images) != len(targets):
        raise ValueError(f"{len(images)} images for {len(targets)} targets")
    if not len(images):
        raise InputError("the detector has no training frame: the train split holds no solo video")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    import copy

    model = build_detector(n_classes, score_threshold=0.05, input_size=input_size, backbone=backbone).to(device)
    # Scale augmentation: the model resizes each training image to one of these shorter sides.
    train_sizes = tuple(int(round(input_size * f)) for f in (0.8, 0.9, 1.0, 1.1, 1.2))
    if backbone != "efficientnet_lite0":
        for_training_from_scratch(model)
    steps = epochs * -(-len(images) // batch_size)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    jitter = v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05)
    if backbone == "efficientnet_lite0":  # held-out looks: palettes differ, not only lighting
        jitter = v2.Compose([v2.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1),
                             v2.RandomGrayscale(p=0.1)])
    best, best_state = None, None
    X = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    if val is not None and len(val[0]):
        pick = np.unique(np.linspace(0, len(val[0]) - 1, min(48, len(val[0]))).round().astype(int))
        val = (val[0][pick], [val[1][i] for i in pick])
    history = []
    for epoch in range(epochs):
        model.train()
        model.transform.min_size = train_sizes
        order = torch.randperm(len(X), generator=gen).tolist()
        total = 0.0
        for i in range(0, len(X), batch_size):
            torch.manual_seed(seed * 100003 + epoch * 1009 + i)
            batch, goals = [], []
            for j in order[i : i + batch_size]:
                img = jitter(X[j]).float().div_(255)
                boxes = torch.from_numpy(targets[j][0]).clone()
                if torch.rand(()) < 0.5:
                    img = img.flip(-1)
                    width = img.shape[-1]
                    boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
                batch.append(img.to(device))
                goals.append({"boxes": boxes.to(device), "labels": torch.from_numpy(targets[j][1] + 1).to(device)})
            losses = model(batch, goals)
            loss = sum(losses.values())
            if not torch.isfinite(loss):
                raise FloatingPointError(f"detector loss is {loss.item()} at epoch {epoch + 1}; lower vision.lr")
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        model.transform.min_size = (int(input_size),)  # evaluation at the one size
        row = {"epoch": epoch + 1, "loss": total / len(X), "val_acc": float("nan"), "val_iou": float("nan")}
        if val is not None and len(val[0]):
            model.eval()
            scores = evaluate_detector(model, val[0], val[1], device=device)
            row.update(val_acc=scores["acc"], val_iou=scores["iou"])
        if best is None or np.isnan(row["val_acc"]) or (row["val_acc"], row["val_iou"]) > (best["val_acc"], best["val_iou"]):
            best, best_state = row, copy.deepcopy(model.state_dict())
        history.append(row)
        if log:
            log(f"epoch {row['epoch']}/{epochs} loss {row['loss']:.4f} val_acc {row['val_acc']:.3f} "
                f"val_iou {row['val_iou']:.3f}")
    for row in history:
        row["selected"] = row is best
    model.load_state_dict(best_state)
    return model.eval(), history


def side_detections(rows: pd.DataFrame, label_names: Sequence[str], *, frame_width: int) -> list[dict]:
    """The instrument on each side of a duet frame: per side (by box centre), the
    instrument with the largest sum of per-frame best scores, with its mean box. If both
    sides name one instrument, the side with the weaker claim takes its runner-up. Sides
    without any detection are left out.
    """
    if rows.empty:
        return []
    left = (rows["x1"] + rows["x2"]) / 2 < frame_width / 2
    ranked = {side: _ranked(rows[mask]) for side, mask in (("left", left), ("right", ~left)) if mask.any()}
    if len(ranked) == 2 and ranked["left"][0][0] == ranked["right"][0][0]:
        weak = "left" if ranked["left"][0][1] < ranked["right"][0][1] else "right"
        if len(ranked[weak]) > 1:
            ranked[weak] = ranked[weak][1:]
        else:
            del ranked[weak]
    return [_entry(label_names[entries[0][0]], entries[0][2], side, frame_width) for side, entries in ranked.items()]


def describe_detections(item: str, rows: pd.DataFrame, label_names: Sequence[str], indices: Sequence[int],
                        timestamps: Sequence[float], *, frame_width: int, score_threshold: float,
                        present_threshold: float = 0.5, sides: bool = False) -> dict:
    """The vision record of one video or mixture under the detector method.

    ``rows`` are detections of the sampled frames (``frame_index`` counts those frames,
    ``indices`` maps them back to the video's, whose ``timestamps`` are given). The two surest instruments over the
    detections at or above ``score_threshold`` are the ones on screen, ordered left to right
    by their mean boxes. With ``sides`` (a duet or a side-by-side mixture: one player on
    each side), each side's surest instrument is taken instead (:func:`side_detections`). When fewer than two instruments
    pass the threshold, the weaker detections are used and ``"below_threshold"`` says so;
    a solo video may still name one (separation refuses fewer than two).
    """
    sure = rows[rows["score"] >= score_threshold]
    pool = side_detections if sides else top_detections
    kwargs = {} if sides else {"k": 2}
    top = pool(sure, label_names, frame_width=frame_width, **kwargs)
    below = len(top) < 2
    if below:
        top = pool(rows, label_names, frame_width=frame_width, **kwargs)
    top = sorted(top, key=lambda e: e["box"][0] + e["box"][2])
    frames = []
    for k, i in enumerate(indices):
        mine = rows[rows["frame_index"] == k].sort_values("score", ascending=False)
        frames.append({"index": int(i), "time": round(float(timestamps[i]), 3), "detections": [
            {"instrument": label_names[int(r.class_id)], "score": round(float(r.score), 4),
             "box": [round(float(v), 1) for v in (r.x1, r.y1, r.x2, r.y2)]}
            for r in mine.itertuples()
        ]})
    return {
        "item": item,
        "method": "detector",
        "instruments": [e["instrument"] for e in top],
        "positions": ["left", "right"] if len(top) == 2 else [e["position"] for e in top],
        "scores": [round(e["score"], 4) for e in top],
        "boxes": [e["box"] for e in top],
        "box_sides": [e["position"] for e in top],
        "below_threshold": below,
        "present": present_instruments(top, present_threshold) if top else [],
        "frames": frames,
    }
