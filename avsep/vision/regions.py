"""A frame classifier that learns instruments from their boxes, not from whole frames.

A linear head on a whole frame's pooled features learns whatever tells the training videos
apart: the player's clothes, the room, the light. On videos whose players and rooms differ
(held-out looks) it then names the clothes' instrument. When the training videos come with
instrument boxes (``<dataset>/annotations/<video_id>.tsv``, as the detector uses), the
region classifier learns from the box's features instead:

- **training**: each training frame goes once through the frozen backbone. Its last
  feature map, resampled to a :data:`GRID` x :data:`GRID` grid, is averaged inside each
  instrument box, grown by
  :data:`BOX_MARGIN` on each side, which gives that instrument's examples; windows of the
  grid (:func:`window_grid`) that overlap no box (IoU below :data:`NEGATIVE_IOU`) give
  examples of a background class. A multinomial logistic regression over the instruments
  and the background is fitted on them (the same fit as the whole-frame linear head);
- **inference** needs no box: the head, being linear, is applied to every cell of the
  feature map, giving a class-score map; each window of the grid averages it (the mean of
  the scores is the score of the mean features), a softmax gives each window's
  probabilities, and the image's score for an instrument is its highest probability over
  the windows. The scores, renormalised over the instruments, are the image's class
  probabilities; :meth:`RegionClassifier.window_probs` gives the windows' own, which say
  where the instrument is.

Colour alone would name some instruments in training and fail on held-out looks, whose
instruments and clothes have other colours (a bronze flute looks like brass). So a fraction
(``recolour``) of the training frames is seen recoloured (:func:`recolour_frames`: torchvision's
ColorJitter over the whole hue circle, and RandomGrayscale); the transforms are
photometric, so the boxes stay where they are, and each frame still costs one backbone pass.

This is the R-CNN recipe (Girshick et al. 2014: region features, a linear classifier with
a background class, hard negatives from the rest of the image) on a frozen backbone and a
fixed window grid instead of proposals, so that it trains in seconds on a CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from avsep.errors import InputError
from avsep.vision.backbones import FeatureClassifier
from avsep.vision.classifier import inference_batch_size, to_batch
from avsep.vision.training import HEAD_C_GRID, better_checkpoint, logistic_head, mark_selected, val_scores

__all__ = ["BOX_MARGIN", "NEGATIVE_IOU", "RegionClassifier", "recolour_frames", "train_region_head", "window_grid"]

#: Cells per image side of the grid that windows and boxes are snapped to.
GRID = 20
#: Window sides, as fractions of the image side, that the inference grid combines.
WINDOW_SIDES = (0.15, 0.2, 0.3, 0.4, 0.5)
#: Step of the window grid, as a fraction of the image side.
WINDOW_STEP = 0.05  # one cell of GRID
#: The longest side of a grid window over its shortest.
WINDOW_MAX_ASPECT = 3.0
#: Each side of an instrument box is grown by this fraction of the box for its example.
BOX_MARGIN = 0.25
#: Background examples per training frame, and the most they may overlap a box (IoU).
NEGATIVES_PER_FRAME = 8
NEGATIVE_IOU = 0.2


def recolour_frames(images: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``images`` (uint8 ``(N, H, W, 3)``) with a ``fraction`` of them, drawn with ``seed``,
    recoloured: brightness, contrast and saturation jittered, the hue turned anywhere on its
    circle, and one in five made grey (torchvision ``transforms.v2``). Geometry is untouched,
    so boxes stay valid. Returns the frames (a copy) and which ones were recoloured."""
    from torchvision.transforms import v2

    if not 0 <= fraction <= 1:
        raise InputError(f"the fraction of recoloured frames must be within [0, 1], got {fraction}")
    chosen = np.random.default_rng(seed).random(len(images)) < fraction
    out = np.array(images, copy=True)
    if chosen.any():
        torch.manual_seed(seed)
        recolour = v2.Compose([v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.5, hue=0.5),
                               v2.RandomGrayscale(0.2)])
        for i in np.flatnonzero(chosen):
            out[i] = recolour(torch.from_numpy(out[i]).permute(2, 0, 1)).permute(1, 2, 0).numpy()
    return out, chosen


def window_grid(sides: Sequence[float] = WINDOW_SIDES, step: float = WINDOW_STEP,
                max_aspect: float = WINDOW_MAX_ASPECT) -> torch.Tensor:
    """Windows ``(K, 4)`` as ``(x1, y1, x2, y2)`` fractions of the image: every pair of
    sides whose aspect is at most ``max_aspect``, at every ``step``, inside the image."""
    out = []
    for w in sides:
        for h in sides:
            if max(w / h, h / w) > max_aspect:
                continue
            for x in np.arange(0.0, 1.0 - w + 1e-9, step):
                for y in np.arange(0.0, 1.0 - h + 1e-9, step):
                    out.append((x, y, x + w, y + h))
    return torch.tensor(out, dtype=torch.float32)


def _cells(boxes: torch.Tensor, image_size: int) -> torch.Tensor:
    """Boxes in input pixels to the cells ``[x1, y1, x2, y2)`` of the :data:`GRID` x
    :data:`GRID` grid that they cover (at least one cell)."""
    c = (boxes / image_size * GRID).round().long().clamp(0, GRID)
    x1, y1 = c[:, 0].clamp(max=GRID - 1), c[:, 1].clamp(max=GRID - 1)
    return torch.stack([x1, y1, torch.maximum(c[:, 2], x1 + 1), torch.maximum(c[:, 3], y1 + 1)], dim=1)


def region_means(maps: torch.Tensor, boxes: Sequence[torch.Tensor], image_size: int) -> torch.Tensor:
    """The mean of ``maps`` ``(N, C, h, w)``, bilinearly resampled to the
    :data:`GRID` x :data:`GRID` grid, over each box: one ``(K_i, 4)`` tensor of boxes per
    image, in input pixels (snapped to the grid); returns ``(sum K_i, C)``.

    The sums come from a summed-area table, so a thousand windows cost a few additions each.
    """
    import torch.nn.functional as F

    fine = F.interpolate(maps, size=(GRID, GRID), mode="bilinear", align_corners=False)
    table = F.pad(fine.cumsum(2).cumsum(3), (1, 0, 1, 0))  # (N, C, G+1, G+1)
    out = []
    for i, b in enumerate(boxes):
        c = _cells(b.to(maps.device).float(), image_size)
        x1, y1, x2, y2 = c.unbind(1)
        t = table[i]
        total = t[:, y2, x2] - t[:, y1, x2] - t[:, y2, x1] + t[:, y1, x1]  # (C, K)
        out.append((total / ((x2 - x1) * (y2 - y1)).to(total.dtype)).T)
    return torch.cat(out) if out else maps.new_zeros((0, maps.shape[1]))


class RegionClassifier(FeatureClassifier):
    """A :class:`~avsep.vision.backbones.FeatureClassifier` whose linear head has one more output,
    the background, and which scores an image by its best window (see the module).

    Input: ``(N, 3, S, S)`` ImageNet-normalised RGB; output: log class probabilities
    ``(N, n_classes)``, so that a softmax of the output gives them back.
    """

    def __init__(self, backbone: str, n_classes: int, *, pretrained: bool = True, weights: str | Path = ""):
        if not backbone.startswith("efficientnet"):
            raise InputError(f"the region classifier reads the backbone's feature map: it needs an "
                             f"efficientnet backbone, got {backbone!r}")
        super().__init__(backbone, n_classes + 1, head="linear", pretrained=pretrained, weights=weights)
        self.n_classes = n_classes
        self.register_buffer("windows", window_grid(), persistent=False)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's last feature map ``(N, D, S/32, S/32)``."""
        return self.features.feature_maps(x * self.in_scale + self.in_shift)

    def window_logits(self, maps: torch.Tensor, image_size: int) -> torch.Tensor:
        """Logits ``(N, K, n_classes + 1)`` of every grid window, the background last."""
        scores = torch.einsum("ndhw,cd->nchw", maps, self.head.weight) + self.head.bias[None, :, None, None]
        n = len(maps)
        pooled = region_means(scores, [self.windows * image_size] * n, image_size)
        return pooled.reshape(n, len(self.windows), -1)

    def window_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(N, K, n_classes + 1)`` of every window of :attr:`windows`
        (fractions of the image), the background last."""
        return torch.softmax(self.window_logits(self.feature_map(x), x.shape[-1]), dim=2)

    def scores_from_maps(self, maps: torch.Tensor, image_size: int) -> torch.Tensor:
        """Log class probabilities ``(N, n_classes)`` from feature maps: each instrument's
        best window probability, renormalised over the instruments."""
        probs = torch.softmax(self.window_logits(maps, image_size), dim=2)[..., : self.n_classes]
        best = probs.amax(dim=1).clamp_min(1e-12)
        return torch.log(best / best.sum(dim=1, keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scores_from_maps(self.feature_map(x), x.shape[-1])


def _grown(boxes: torch.Tensor, margin: float, size: int) -> torch.Tensor:
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    grown = boxes + torch.stack([-w, -h, w, h], dim=1) * margin
    return grown.clamp(0, size)


def train_region_head(
    images: np.ndarray,
    boxes: Sequence[tuple[np.ndarray, np.ndarray]],
    n_classes: int,
    *,
    backbone: str = "efficientnet_lite0",
    weights: str = "",
    input_size: int = 320,
    recolour: float = 0.5,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int | None = None,
    val: tuple[np.ndarray, np.ndarray] | None = None,
    log: Callable[[str], None] | None = None,
):
    """Train a :class:`RegionClassifier` on the boxes of frozen-backbone feature maps.

    Args:
        images: uint8 ``(N, H, W, 3)`` training frames.
        boxes: per frame, ``(boxes (n, 4) in frame pixels, class ids (n,))``, as
            :func:`avsep.vision.annotations.frame_boxes` gives them; a frame without boxes
            gives background examples only.
        recolour: the fraction of the training frames seen recoloured
            (:func:`recolour_frames`, drawn with ``seed``) instead of as they are.
        val: held-out frames and labels, scored as at inference (no boxes); the head's
            strength is chosen on them from :data:`avsep.vision.training.HEAD_C_GRID`.
        batch_size: frames per forward pass (default
            :func:`avsep.vision.classifier.inference_batch_size`; no gradient flows).

    Returns:
        the model (eval mode) and one history row per strength; the selected row holds
        ``val_pred`` (see :func:`avsep.vision.training.fit_classifier`).
    """
    import copy

    from torchvision.ops import box_iou

    if len(images) != len(boxes):
        raise InputError(f"{len(images)} training frames but boxes for {len(boxes)}")
    batch_size = batch_size or inference_batch_size(device)
    images, recoloured = recolour_frames(images, recolour, seed)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = RegionClassifier(backbone, n_classes, pretrained=True, weights=weights).to(device).eval()
    grid = model.windows.cpu() * input_size
    background = n_classes
    feats, labels = [], []
    n_boxes = 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            chunk = images[i : i + batch_size]
            maps = model.feature_map(to_batch(list(chunk), input_size).to(device))
            rois, ids = [], []
            for k, img in enumerate(chunk):
                frame_boxes, frame_ids = boxes[i + k]
                scale = torch.tensor([input_size / img.shape[1], input_size / img.shape[0]] * 2)
                b = torch.as_tensor(np.asarray(frame_boxes, np.float32)).reshape(-1, 4) * scale
                grown = _grown(b, BOX_MARGIN, input_size)
                if len(b):
                    overlap = torch.maximum(box_iou(grid, b).amax(1), box_iou(grid, grown).amax(1))
                    free = torch.nonzero(overlap < NEGATIVE_IOU)[:, 0].numpy()
                else:
                    free = np.arange(len(grid))
                neg = grid[rng.choice(free, min(NEGATIVES_PER_FRAME, len(free)), replace=False)]
                rois.append(torch.cat([grown, neg]))
                ids += [int(c) for c in np.asarray(frame_ids).reshape(-1)] + [background] * len(neg)
                n_boxes += len(b)
            feats.append(region_means(maps, rois, input_size).cpu())
            labels += ids
            done = min(i + batch_size, len(images))
            if log and (done * 4 // len(images) > i * 4 // len(images) or i == 0):
                log(f"region features of frame {done}/{len(images)}")
    if not n_boxes:
        raise InputError("the region classifier needs instrument boxes, and no training frame has one")
    F_train, y_train = torch.cat(feats), np.asarray(labels, np.int64)
    has_val = val is not None and len(val[0])
    val_maps = None
    if has_val:
        with torch.no_grad():
            val_maps = torch.cat([model.feature_map(to_batch(list(val[0][i : i + batch_size]), input_size).to(device))
                                  for i in range(0, len(val[0]), batch_size)])
    if log:
        log(f"{n_boxes} instrument boxes and {int((y_train == background).sum())} background windows from "
            f"{len(images)} frames ({int(recoloured.sum())} recoloured); {len(val[0]) if has_val else 0} "
            f"validation frames")
    history, best, best_state, best_pred = [], None, None, None
    for k, C in enumerate(HEAD_C_GRID if has_val else HEAD_C_GRID[:1]):
        linear = logistic_head(F_train.numpy(), y_train, n_classes + 1, C, seed)
        with torch.no_grad():
            out = linear(F_train)
            loss = float(nn.functional.cross_entropy(out, torch.from_numpy(y_train)))
            train_acc = float((out.argmax(1).numpy() == y_train).mean())
        row = {"epoch": k + 1, "C": C, "loss": loss, "train_acc": train_acc}
        model.head.load_state_dict(linear.state_dict())
        pred = None
        if has_val:
            with torch.no_grad():
                probs = torch.exp(model.scores_from_maps(val_maps, input_size)).cpu().numpy()
            row["val_acc"], row["val_loss"] = val_scores(probs, val[1])
            pred = probs.argmax(1)
        else:
            row["val_acc"], row["val_loss"] = float("nan"), float("nan")
        if better_checkpoint(row, best):
            best, best_state, best_pred = row, copy.deepcopy(linear.state_dict()), pred
        history.append(row)
        if log:
            log(f"C {C:g}: region train_acc {train_acc:.3f} val_acc {row['val_acc']:.3f} "
                f"val_loss {row['val_loss']:.4f}")
    mark_selected(history, best, best_pred)
    model.head.load_state_dict(best_state)
    return model.eval(), history
