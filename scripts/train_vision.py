"""Rule train_vision: the vision model (the halves classifier or the detector), trained on
the solo frames or loaded from local weights, with its validation accuracy and confusion
matrix."""

import numpy as np
import pandas as pd
import torch

from avsep.dataset import read_manifest
from avsep.devices import pick_device
from avsep.files import atomic_path, read_frames, write_table
from avsep.logs import script_log
from avsep.plots import plot_confusion
from avsep.vision import confusion_matrix

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    v = snakemake.params.vision
    device = pick_device(snakemake.params.device)
    manifest = read_manifest(snakemake.input.manifest)
    solo = manifest[manifest["kind"] == "solo"]
    names = sorted(solo["labels"].unique())
    frames_of = {p.split("/")[-1][: -len(".h5")]: p for p in snakemake.input.frames}
    no_frames = np.zeros((0, 1, 1, 3), np.uint8)

    def solo_frames(split, stride=1):
        """(manifest row, frames, timestamps) of each solo video of ``split``, every n-th frame."""
        for _, row in solo[solo["split"] == split].iterrows():
            frames, stamps, _ = read_frames(frames_of[row["video_id"]], expect={"fps": snakemake.params.frames_fps})
            yield row, frames[::stride], stamps[::stride]

    annotations = {p.split("/")[-1][: -len(".tsv")]: p for p in snakemake.input.annotations}

    def boxes_of(row, frames, stamps, classes):
        """The video's annotated boxes at each frame's time, scaled to the frames (the
        detector and the region classifier both train on them)."""
        from avsep.detector import frame_boxes, read_annotations

        scale = (frames.shape[2] / row["width"], frames.shape[1] / row["height"])
        return frame_boxes(read_annotations(annotations[row["video_id"]]), stamps, scale=scale, label_names=classes)

    if v["method"] == "halves":
        from avsep.vision import (build_classifier, classify_images, fit_classifier, load_classifier_weights,
                                  sample_indices, save_classifier, train_classifier, train_classifier_head)

        def load(split, per_video=0, with_boxes=False):
            """Frames and labels of the split's solo videos, at most ``per_video`` each; with
            their instrument boxes (scaled to the frames) as a third item if asked."""
            images, labels, boxes = [], [], []
            for row, frames, stamps in solo_frames(split):
                if per_video:
                    keep = sample_indices(len(frames), per_video)
                    frames, stamps = frames[keep], stamps[keep]
                images.append(frames)
                labels += [names.index(row["labels"])] * len(frames)
                if with_boxes:
                    boxes += boxes_of(row, frames, stamps, names)
            out = (np.concatenate(images), np.array(labels)) if images else (no_frames, np.zeros(0, int))
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
            train = load("train", v["frames_per_video"], with_boxes=snakemake.params.regions)
            how = f"{v['init']} {v['backbone']}, {v['train'] if v['init'] == 'pretrained' else 'every layer'}"
            if snakemake.params.regions:
                how += ", its linear head on the instruments' boxes (vision.regions)"
            log.info("training %s on %d frames of %d instruments (%d validation frames)", how, len(train[0]),
                     len(names), len(val[0]))
            if snakemake.params.regions:
                from avsep.regions import train_region_head

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
                from avsep.backbones import FeatureClassifier

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
        save_classifier(snakemake.output.model, model, backbone=v["backbone"], label_names=names,
                        input_size=v["input_size"], val_accuracy=accuracy)
        shown = names
    else:
        from avsep.detector import (evaluate_detector, load_detector,
                                    save_detector, train_detector)

        d = v["detector"]
        classes = d["classes"] or names

        def load(split, stride):
            images, targets = [], []
            for row, frames, stamps in solo_frames(split, stride):
                images.append(frames)
                targets += boxes_of(row, frames, stamps, classes)
            return (np.concatenate(images) if images else no_frames), targets

        if v["weights"]:
            model = load_detector(v["weights"], len(classes), label_names=classes, input_size=d["input_size"],
                                  score_threshold=0.05).to(device)
            history = []
            log.info("loaded %s", v["weights"])
            val = (no_frames, [])  # boxes are only read for training: nothing to validate against
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
        save_detector(snakemake.output.model, model, label_names=classes, input_size=d["input_size"],
                      val_accuracy=accuracy, val_iou=scores["iou"])
        shown = [*classes, "(none)"]
        log.info("validation mean IoU of the surest box %.3f", scores["iou"])

    write_table(snakemake.output.metrics, pd.DataFrame(history or [{"epoch": 0, "val_acc": accuracy}]).round(5))
    with atomic_path(snakemake.output.confusion) as tmp:
        plot_confusion(confusion_matrix(true.astype(int), pred, len(shown)), shown, accuracy, tmp)
    log.info("validation frame accuracy %.3f", accuracy)
