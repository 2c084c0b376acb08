"""Rule separate_deep: one mixture or duet separated by the deep separator, each track from
what is seen on its side."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import json
from pathlib import Path

import torch

from avsep.deep.pipelines import separate_item
from avsep.devices import pick_device
from avsep.files import atomic_dir, write_json, write_wav
from avsep.logs import script_log
from avsep.separation import track_assignment
from avsep.vision.labels import assign_known_labels, visible_from

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    item = snakemake.wildcards.item
    record = json.loads(Path(snakemake.input.vision).read_text())
    visible, labels_from = record, "vision"
    if p.labels == "truth" and p.visible["positions"][0] != "unknown":  # a test mixture: the plan's sides
        visible, labels_from = p.visible, "truth"
    elif p.labels == "truth" and len(set(p.known_labels)) == 2:
        # A duet: its folder's two instruments, placed on the sides by what vision sees.
        visible, labels_from = assign_known_labels(record, p.known_labels), p.labels
    elif p.labels != "vision":
        tags = json.loads(Path(snakemake.input.tags).read_text()) if "tags" in snakemake.input.keys() else None
        visible, labels_from = visible_from(record, p.labels, p.known_labels, tags)
    visible = {**visible, "labels_from": labels_from}
    out, estimates, sr = separate_item(item, snakemake.input.audio, record, visible, snakemake.input.model,
                                       frames_path=snakemake.input.get("frames"), frames_fps=p.frames_fps,
                                       native=p.stft_native, device=pick_device(p.device), log=log)
    with atomic_dir(snakemake.output[0]) as tmp:
        for inst, est in zip(out["instruments"], estimates):
            write_wav(tmp / f"{inst}.wav", est, sr)
        write_json(tmp / "separation.json", out)
        write_json(tmp / "assignment.json", track_assignment(item, {**visible, **out}, labels_from))
