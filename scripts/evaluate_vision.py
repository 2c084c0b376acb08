"""Rule evaluate_vision: visual and location accuracy of the vision stage on the test
mixtures and the duets (for duets both as vision names them and with the folder's labels
placed by vision), with bootstrap intervals and a per-instrument confusion matrix."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from avsep.dataset import read_manifest
from avsep.detector import read_annotations
from avsep.files import atomic_path, write_table
from avsep.logs import script_log
from avsep.mixtures import read_plan
from avsep.plots import plot_confusion
from avsep.vision import assign_known_labels
from avsep.vision_scores import score_vision, side_confusion, summarize_vision, duet_true_sides

with script_log(snakemake.log[0]) as log:
    records = {Path(p).stem: json.loads(Path(p).read_text()) for p in snakemake.input.vision}
    plan = read_plan(snakemake.input.plan)
    manifest = read_manifest(snakemake.input.manifest)
    annotations = {Path(p).stem: p for p in snakemake.input.annotations}
    rows, pairs = [], []
    for mix in plan.itertuples():
        sides = {mix.left_instrument: "left", mix.right_instrument: "right"}
        record = records[mix.mix_id]
        rows.append({"item": mix.mix_id, "kind": "mixture", "labels_from": "vision",
                     "truth": f"{mix.left_instrument}:left,{mix.right_instrument}:right",
                     **score_vision(record, list(sides), sides)})
        placed = dict(zip(record["positions"], record["instruments"]))
        pairs += [(inst, placed.get(side, "")) for inst, side in sides.items()]
    for duet in manifest[manifest["kind"] == "duet"].itertuples():
        labels = duet.labels.split(",")
        record = records[duet.video_id]
        sides = duet_true_sides(read_annotations(annotations[duet.video_id])) if duet.video_id in annotations else None
        truth = ",".join(f"{i}:{sides[i]}" for i in labels) if sides else ",".join(labels)
        for labels_from, placement in (("vision", record), ("folder+vision", assign_known_labels(record, labels))):
            rows.append({"item": duet.video_id, "kind": "duet", "labels_from": labels_from, "truth": truth,
                         **score_vision(placement, labels, sides)})
        if sides:
            placed = dict(zip(record["positions"], record["instruments"]))
            pairs += [(inst, placed.get(side, "")) for inst, side in sides.items()]
    table = pd.DataFrame(rows)
    summary = summarize_vision(table)
    write_table(snakemake.output.per_item, table)
    write_table(snakemake.output.summary, summary)
    names = sorted(set(manifest.loc[manifest["kind"] == "solo", "labels"]))
    cm = side_confusion(pairs, names)
    accuracy = float(np.trace(cm) / max(1, cm.sum()))
    with atomic_path(snakemake.output.confusion) as tmp:
        plot_confusion(cm, [*names, "(other)"], accuracy, tmp, title="test mixture and duet sides (vision)")
    for row in summary.itertuples():
        log.info("%s (%s): %d items, visual accuracy %.3f, location accuracy %.3f, %d uncertain",
                 row.kind, row.labels_from, row.items, row.visual_acc, row.location_acc, row.uncertain)
