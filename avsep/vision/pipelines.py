"""The vision rules' work, from the files they name and their config dicts: what
``scripts/train_vision.py`` (:func:`train_vision`), ``scripts/vision_labels.py``
(:func:`label_item`) and ``scripts/evaluate_vision.py`` (:func:`evaluate_vision`) run.

The modules they call do the work on arrays: :mod:`avsep.vision.training` and
:mod:`avsep.vision.regions` (the ``halves`` classifier), :mod:`avsep.vision.detector`,
:mod:`avsep.vision.labels` (the records), :mod:`avsep.vision.scores`. These functions read
the frames, the manifest and the boxes, pick what the config asks for, and write the
outputs.

pandas, matplotlib and the detector are imported inside the functions that use them:
:func:`label_item` runs once per video and mixture, and needs none of them for ``halves``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from avsep.files import atomic_path, read_frames, write_table
from avsep.vision.training import confusion_matrix, sample_indices

__all__ = ["SoloVideos", "train_vision", "train_halves", "train_detector_model", "label_item", "crossfit_labels",
           "evaluate_vision"]

_NO_FRAMES = np.zeros((0, 1, 1, 3), np.uint8)


@dataclasses.dataclass
class SoloVideos:
    """The solo videos of the manifest, with their frames files and box annotations.

    Attributes:
        rows: the manifest's solo rows.
        names: their instruments, sorted: the classes.
        frames_of: video id -> frames file (``results/frames/<video_id>.h5``).
        annotations_of: video id -> box annotations (``<dataset>/annotations/<video_id>.tsv``).
        fps: the frame rate the frames files must have been sampled at.
    """

    rows: object  # pandas.DataFrame
    names: list[str]
    frames_of: Mapping[str, str]
    annotations_of: Mapping[str, str]
    fps: float

    @classmethod
    def from_paths(cls, manifest, frame_paths: Sequence[str], annotation_paths: Sequence[str],
                   fps: float) -> "SoloVideos":
        """From the manifest (a DataFrame) and the rule's frames and annotation files, each
        named ``<video_id>.h5`` / ``<video_id>.tsv``."""
        solo = manifest[manifest["kind"] == "solo"]
        return cls(solo, sorted(solo["labels"].unique()), {p.split("/")[-1][: -len(".h5")]: p for p in frame_paths},
                   {p.split("/")[-1][: -len(".tsv")]: p for p in annotation_paths}, fps)

    def frames(self, split: str, stride: int = 1) -> Iterator[tuple]:
        """(manifest row, frames, timestamps) of each solo video of ``split``, every n-th frame."""
        for _, row in self.rows[self.rows["split"] == split].iterrows():
            frames, stamps, _ = read_frames(self.frames_of[row["video_id"]], expect={"fps": self.fps})
            yield row, frames[::stride], stamps[::stride]

    def boxes(self, row, frames: np.ndarray, stamps: np.ndarray, classes: Sequence[str]) -> list:
        """The video's annotated boxes at each frame's time, scaled to the frames (the
        detector and the region classifier both train on them)."""
        from avsep.vision.annotations import frame_boxes, read_annotations

        scale = (frames.shape[2] / row["width"], frames.shape[1] / row["height"])
        return frame_boxes(read_annotations(self.annotations_of[row["video_id"]]), stamps, scale=scale,
                           label_names=classes)


def train_halves(solo: SoloVideos, v: dict, *, regions: bool, device: str, model_path: str | Path,
                 log: logging.Logger) -> tuple[list[dict], np.ndarray, np.ndarray, float, list[str]]:
    """Train (or load, ``vision.init: classifier``) the ``halves`` frame classifier as
    ``v`` (the ``vision`` config) asks, score it on the validation frames and save it to
    ``model_path``.

    Args:
        regions: train the region classifier on the instruments' boxes (``vision.regions``).

    Returns:
        ``(history, true, pred, accuracy, class names)`` on the validation frames.
    """
    from avsep.vision.classifier import build_classifier, classify_images, load_classifier_weights, save_classifier
    from avsep.vision.training import fit_classifier, train_classifier, train_classifier_head

    names = solo.names

    def load(split, per_video=0, with_boxes=False):
        """Frames and labels of the split's solo videos, at most ``per_video`` each; with
        their instrument boxes (scaled to the frames) as a third item if asked."""
        images, labels, boxes = [], [], []
        for row, frames, stamps in solo.frames(split):
            if per_video:
                keep = sample_indices(len(frames), per_video)
                frames, stamps = frames[keep], stamps[keep]
            images.append(frames)
            labels += [names.index(row["labels"])] * len(frames)
            if with_boxes:
                boxes += solo.boxes(row, frames, stamps, names)
        out = (np.concatenate(images), np.array(labels)) if images else (_NO_FRAMES, np.zeros(0, int))
        return (*out, boxes) if with_boxes else out

    val = load("val", v["frames_per_video"])
    common = dict(input_size=v["input_size"], seed=v["seed"], label_smoothing=v["label_smoothing"],
                  augment=v["augment"], device=device, val=val, log=log.info)
    if v["init"] == "classifier":
        model = load_classifier_weights(build_classifier(v["backbone"], len(names)), v["weights"],
                                        class_map=v["class_map"] or None).to(device).eval()
        history = []
        log.info("loaded %s", v["weights"])
    else:
        train = load("train", v["frames_per_video"], with_boxes=regions)
        how = f"{v['init']} {v['backbone']}, {v['train'] if v['init'] == 'pretrained' else 'every layer'}"
        if regions:
            how += ", its linear head on the instruments' boxes (vision.regions)"
        log.info("training %s on %d frames of %d instruments (%d validation frames)", how, len(train[0]),
                 len(names), len(val[0]))
        if regions:
            from avsep.vision.regions import train_region_head

            images, _, boxes = train
            model, history = train_region_head(images, boxes, len(names), backbone=v["backbone"],
                                               weights=v["weights"], input_size=v["input_size"],
                                               recolour=v["recolour"], seed=v["seed"], device=device, val=val,
                                               log=log.info)
        elif v["init"] == "pretrained" and v["train"] == "head":
            model, history = train_classifier_head(*train, len(names), backbone=v["backbone"],
                                                   weights=v["weights"], head=v["head"], views=v["views"],
                                                   epochs=v["head_epochs"], lr=v["head_lr"],
                                                   batch_size=v["batch_size"], **common)
        elif v["init"] == "pretrained":
            from avsep.vision.backbones import FeatureClassifier

            model = FeatureClassifier(v["backbone"], len(names), head=v["head"], weights=v["weights"])
            model, history = fit_classifier(model, *train, epochs=v["epochs"], batch_size=v["batch_size"],
                                            lr=v["lr"], **common)
        else:
            model, history = train_classifier(*train, len(names), backbone=v["backbone"], epochs=v["epochs"],
                                              batch_size=v["batch_size"], lr=v["lr"], **common)
    true = val[1]
    # Training scored the validation frames already: the kept row has their predictions.
    kept = [row.pop("val_pred") for row in history if "val_pred" in row]
    pred = kept[0] if kept else (
        classify_images(model, list(val[0]), input_size=v["input_size"], device=device).argmax(1)
        if len(true) else np.zeros(0, int))
    accuracy = float((pred == true).mean()) if len(true) else float("nan")
    save_classifier(model_path, model, backbone=v["backbone"], label_names=names, input_size=v["input_size"],
                    val_accuracy=accuracy)
    return history, true, pred, accuracy, names


def train_detector_model(solo: SoloVideos, v: dict, *, device: str, model_path: str | Path,
                         log: logging.Logger) -> tuple[list[dict], np.ndarray, np.ndarray, float, list[str]]:
    """Train the detector on the train split's solo frames and boxes (or load
    ``vision.weights``), score it on the validation frames and save it to ``model_path``.

    Returns:
        ``(history, true, pred, accuracy, class names)``; ``pred`` counts a frame where
        nothing was detected as one more class, ``(none)``, last in the names.
    """
    from avsep.vision.detector import evaluate_detector, load_detector, save_detector, train_detector

    d = v["detector"]
    classes = d["classes"] or solo.names

    def load(split, stride):
        images, targets = [], []
        for row, frames, stamps in solo.frames(split, stride):
            images.append(frames)
            targets += solo.boxes(row, frames, stamps, classes)
        return (np.concatenate(images) if images else _NO_FRAMES), targets

    if v["weights"]:
        model = load_detector(v["weights"], len(classes), label_names=classes, input_size=d["input_size"],
                              score_threshold=0.05).to(device)
        history = []
        log.info("loaded %s", v["weights"])
        val = (_NO_FRAMES, [])  # boxes are only read for training: nothing to validate against
    else:
        train, val = load("train", d["frame_stride"]), load("val", 1)
        log.info("training the detector on %d frames of %d instruments", len(train[0]), len(classes))
        model, history = train_detector(*train, len(classes), backbone=d["backbone"], input_size=d["input_size"],
                                        epochs=d["epochs"], batch_size=d["batch_size"], lr=d["lr"],
                                        seed=v["seed"], device=device, val=val, log=log.info)
    scores = evaluate_detector(model, val[0], val[1], device=device)
    accuracy, true = scores["acc"], scores["true"]
    # A frame where nothing was detected counts in a last "(none)" column.
    pred = np.where(scores["pred"] < 0, len(classes), scores["pred"])
    save_detector(model_path, model, label_names=classes, input_size=d["input_size"],
                  val_accuracy=accuracy, val_iou=scores["iou"])
    log.info("validation mean IoU of the surest box %.3f", scores["iou"])
    return history, true, pred, accuracy, [*classes, "(none)"]


def train_vision(manifest_path: str | Path, frame_paths: Sequence[str], annotation_paths: Sequence[str], v: dict,
                 *, regions: bool, frames_fps: float, device: str, model_path: str | Path,
                 metrics_path: str | Path, confusion_path: str | Path, log: logging.Logger) -> float:
    """Rule ``train_vision``: the vision model of ``v["method"]`` (:func:`train_halves` or
    :func:`train_detector_model`), its per-epoch metrics and its validation confusion
    matrix. Returns the validation frame accuracy."""
    import pandas as pd

    from avsep.dataset import read_manifest
    from avsep.report.plots import plot_confusion

    solo = SoloVideos.from_paths(read_manifest(manifest_path), frame_paths, annotation_paths, frames_fps)
    if v["method"] == "halves":
        history, true, pred, accuracy, shown = train_halves(solo, v, regions=regions, device=device,
                                                            model_path=model_path, log=log)
    else:
        history, true, pred, accuracy, shown = train_detector_model(solo, v, device=device, model_path=model_path,
                                                                    log=log)
    write_table(metrics_path, pd.DataFrame(history or [{"epoch": 0, "val_acc": accuracy}]).round(5))
    with atomic_path(confusion_path) as tmp:
        plot_confusion(confusion_matrix(true.astype(int), pred, len(shown)), shown, accuracy, tmp)
    log.info("validation frame accuracy %.3f", accuracy)
    return accuracy


def label_item(item: str, frames_path: str | Path, model_path: str | Path, v: dict, *, two_players: bool,
               frames_fps: float, device: str, log: logging.Logger) -> dict:
    """Rule ``vision_labels``: the vision record of one video or mixture (``frames_path``: a
    frames file, or a mixture folder holding ``frames.h5``), from the model of
    ``train_vision``: :func:`avsep.vision.labels.describe_halves` or
    :func:`avsep.vision.detector.describe_detections`.

    Args:
        two_players: the item has one player on each side (a duet or a mixture); the
            detector then takes each side's surest instrument.
    """
    source = Path(frames_path)
    frames, stamps, _ = read_frames(source / "frames.h5" if source.is_dir() else source, expect={"fps": frames_fps})
    picks = sample_indices(len(frames), v["max_frames"])
    if v["method"] == "halves":
        from avsep.vision.classifier import classify_images, load_classifier
        from avsep.vision.labels import describe_halves, label_halves

        model, meta = load_classifier(model_path, device)
        classify = lambda images: classify_images(model, images, input_size=meta["input_size"], device=device)
        evidence = [label_halves(frames[i], classify, meta["label_names"]) for i in picks]
        record = describe_halves(item, evidence, picks, stamps, present_threshold=v["present_threshold"],
                                 abstain_margin=v["abstain_margin"], label_names=meta["label_names"])
        if record["uncertain"]:
            log.warning("%s: uncertain (%s); best two by pooled score: %s", item, record["uncertain_reason"],
                        " and ".join(record["instruments"]))
    else:
        from avsep.files import read_checkpoint
        from avsep.vision.detector import describe_detections, detect, load_detector

        d = v["detector"]
        checkpoint = read_checkpoint(model_path)
        names = checkpoint["label_names"]
        # Detections down to 0.05 are kept as evidence; d["score_threshold"] decides.
        model = load_detector(checkpoint, len(names), score_threshold=0.05, nms_iou=d["nms_iou"])
        rows = detect(model.to(device), frames[picks], nms_iou=d["nms_iou"], device=device)
        record = describe_detections(item, rows, names, picks, stamps, frame_width=frames.shape[2],
                                     score_threshold=d["score_threshold"], present_threshold=v["present_threshold"],
                                     sides=two_players)
        if record["below_threshold"]:
            log.warning("%s: fewer than two instruments at score >= %.2f; weaker detections used",
                        item, d["score_threshold"])
    return record


def crossfit_labels(manifest_path: str | Path, frame_paths: Sequence[str], annotation_paths: Sequence[str],
                    v: dict, videos: Sequence[str], *, folds: int, regions: bool, frames_fps: float, device: str,
                    log: logging.Logger) -> dict:
    """Rule ``vision_crossfit``: what vision sees in each of the training solos ``videos``,
    each seen by a model that did not train on it (:func:`avsep.vision.labels` records).

    The training solos are dealt into ``folds`` folds per instrument
    (:func:`avsep.miml.labels.crossfit_folds`); for each fold a model of ``v["method"]`` is
    trained as :func:`train_vision` trains it, on the other folds' videos (the validation
    videos validate it), and labels the fold's videos as :func:`label_item` does.

    Returns:
        ``{"folds": k, "videos": {video_id: {"present", "instruments", "fold", ...}},
        "fold_val_acc": [...]}``.
    """
    import tempfile

    from avsep.dataset import read_manifest
    from avsep.miml.labels import crossfit_folds

    manifest = read_manifest(manifest_path)
    solo = SoloVideos.from_paths(manifest, frame_paths, annotation_paths, frames_fps)
    label_of = dict(zip(solo.rows["video_id"], solo.rows["labels"]))
    fold = crossfit_folds(videos, label_of, folds, v["seed"])
    out, accuracies = {}, []
    with tempfile.TemporaryDirectory() as scratch:
        for k in range(folds):
            held = sorted(vid for vid, f in fold.items() if f == k)
            rows = solo.rows[~solo.rows["video_id"].isin(held)]
            part = dataclasses.replace(solo, rows=rows)
            model_path = Path(scratch) / f"fold{k}.pt"
            log.info("fold %d of %d: training on %d solo videos, labelling %d", k + 1, folds,
                     int((rows["split"] == "train").sum()), len(held))
            if v["method"] == "halves":
                *_, accuracy, _ = train_halves(part, v, regions=regions, device=device, model_path=model_path, log=log)
            else:
                *_, accuracy, _ = train_detector_model(part, v, device=device, model_path=model_path, log=log)
            accuracies.append(float(accuracy))
            for vid in held:
                record = label_item(vid, solo.frames_of[vid], model_path, v, two_players=False,
                                    frames_fps=frames_fps, device=device, log=log)
                out[vid] = {"present": record["present"], "instruments": record["instruments"], "fold": k}
                log.info("%s (fold %d): %s", vid, k + 1, ", ".join(record["present"]) or "nothing")
    agree = sum(out[vid]["present"] == [label_of[vid]] for vid in out)
    log.info("cross-fitted labels: %d of %d training solos match their folders", agree, len(out))
    return {"folds": folds, "videos": out, "fold_val_acc": accuracies}


def evaluate_vision(record_paths: Sequence[str], plan_path: str | Path, manifest_path: str | Path,
                    annotation_paths: Sequence[str], *, per_item_path: str | Path, summary_path: str | Path,
                    confusion_path: str | Path, log: logging.Logger, tag_paths: Sequence[str] = ()) -> None:
    """Rule ``evaluate_vision``: the vision records (``results/vision/<item>.json``) scored
    per item (:func:`avsep.vision.scores.score_records`) and summarised with bootstrap
    intervals (:func:`avsep.vision.scores.summarize_vision`), and the confusion of
    instruments per side over the test mixtures and the annotated duets (vision's own).
    With ``tag_paths`` (``results/audio_tags/<item>.json``), the items are also scored with
    the instruments the audio names, placed by vision (``audio+vision``)."""
    import json

    from avsep.dataset import read_manifest
    from avsep.mixtures import read_plan
    from avsep.report.plots import plot_confusion
    from avsep.vision.scores import score_records, side_confusion, summarize_vision

    records = {Path(p).stem: json.loads(Path(p).read_text()) for p in record_paths}
    plan = read_plan(plan_path)
    manifest = read_manifest(manifest_path)
    tags = {Path(p).stem: json.loads(Path(p).read_text()) for p in tag_paths}
    table, pairs = score_records(records, plan, manifest, {Path(p).stem: p for p in annotation_paths}, tags or None)
    summary = summarize_vision(table)
    write_table(per_item_path, table)
    write_table(summary_path, summary)
    names = sorted(set(manifest.loc[manifest["kind"] == "solo", "labels"]))
    cm = side_confusion(pairs, names)
    accuracy = float(np.trace(cm) / max(1, cm.sum()))
    with atomic_path(confusion_path) as tmp:
        plot_confusion(cm, [*names, "(other)"], accuracy, tmp, title="test mixture and duet sides (vision)")
    for row in summary.itertuples():
        log.info("%s (%s): %d items, visual accuracy %.3f, location accuracy %.3f, %d uncertain",
                 row.kind, row.labels_from, row.items, row.visual_acc, row.location_acc, row.uncertain)
