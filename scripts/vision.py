"""Rule vision: which instruments are on screen in a mixture or a duet, and on which side."""

import dataclasses
from pathlib import Path

import torch

from avsep.devices import pick_device
from avsep.files import read_frames, write_json
from avsep.logs import script_log
from avsep.vision import classify_images, label_halves, load_classifier, pool_video_labels, sample_indices

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    device = pick_device(snakemake.params.device)
    model, meta = load_classifier(snakemake.input.model, device)
    source = Path(snakemake.input.frames)
    frames, stamps, _ = read_frames(source / "frames.h5" if source.is_dir() else source)
    picks = sample_indices(len(frames), snakemake.params.max_frames)
    classify = lambda images: classify_images(model, images, input_size=meta["input_size"], device=device)
    evidence = [label_halves(frames[i], classify, meta["label_names"]) for i in picks]
    pooled = pool_video_labels(evidence)
    write_json(snakemake.output[0], {
        "item": snakemake.wildcards.item,
        "method": "halves",
        "instruments": [pooled["left"]["instrument"], pooled["right"]["instrument"]],
        "positions": ["left", "right"],
        "scores": [round(pooled["left"]["score"], 4), round(pooled["right"]["score"], 4)],
        "frames": [
            {"index": int(i), "time": round(float(stamps[i]), 3), **{k: (round(x, 4) if isinstance(x, float) else x)
                                                                     for k, x in dataclasses.asdict(e).items()}}
            for i, e in zip(picks, evidence)
        ],
    })
    log.info("%s: %s | %s", snakemake.wildcards.item, pooled["left"]["instrument"], pooled["right"]["instrument"])
