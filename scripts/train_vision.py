"""Rule train_vision: the frame classifier, trained on solo frames (or loaded from local
weights), with its validation accuracy and confusion matrix."""

import numpy as np
import pandas as pd
import torch

from avsep.dataset import read_manifest
from avsep.devices import pick_device
from avsep.files import atomic_path, read_frames, write_table
from avsep.logs import script_log
from avsep.plots import plot_confusion
from avsep.vision import (build_classifier, classify_images, confusion_matrix, load_classifier_weights,
                          save_classifier, train_classifier)

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    v = snakemake.params.vision
    device = pick_device(snakemake.params.device)
    manifest = read_manifest(snakemake.input.manifest)
    solo = manifest[manifest["kind"] == "solo"]
    names = sorted(solo["labels"].unique())
    frames_of = {p.split("/")[-1][: -len(".h5")]: p for p in snakemake.input.frames}

    def load(split):
        images, labels = [], []
        for _, row in solo[solo["split"] == split].iterrows():
            frames, _, _ = read_frames(frames_of[row["video_id"]])
            images.append(frames)
            labels += [names.index(row["labels"])] * len(frames)
        return (np.concatenate(images), np.array(labels)) if images else (np.zeros((0, 1, 1, 3), np.uint8), np.array([]))

    val = load("val")
    if v["weights"]:
        model = load_classifier_weights(build_classifier(v["backbone"], len(names)), v["weights"],
                                        class_map=v["class_map"] or None).to(device).eval()
        history = []
        log.info("loaded %s", v["weights"])
    else:
        train = load("train")
        log.info("training %s on %d frames of %d instruments", v["backbone"], len(train[0]), len(names))
        model, history = train_classifier(*train, len(names), backbone=v["backbone"], epochs=v["epochs"],
                                          batch_size=v["batch_size"], lr=v["lr"], input_size=v["input_size"],
                                          seed=v["seed"], device=device, val=val, log=log.info)
    probs = classify_images(model, list(val[0]), input_size=v["input_size"], device=device)
    accuracy = float((probs.argmax(1) == val[1]).mean()) if len(val[1]) else float("nan")
    save_classifier(snakemake.output.model, model, backbone=v["backbone"], label_names=names,
                    input_size=v["input_size"], val_accuracy=accuracy)
    write_table(snakemake.output.metrics, pd.DataFrame(history or [{"epoch": 0, "val_acc": accuracy}]).round(5))
    with atomic_path(snakemake.output.confusion) as tmp:
        plot_confusion(confusion_matrix(val[1].astype(int), probs.argmax(1), len(names)) if len(val[1])
                       else np.zeros((len(names), len(names)), int), names, accuracy, tmp)
    log.info("validation frame accuracy %.3f", accuracy)
