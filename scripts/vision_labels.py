"""Rule vision_labels: which instruments are on screen in a video or a mixture, and where."""

from pathlib import Path

import torch

from avsep.devices import pick_device
from avsep.files import read_frames, write_json
from avsep.logs import script_log
from avsep.vision import sample_indices

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    v = snakemake.params.vision
    item = snakemake.wildcards.item
    device = pick_device(snakemake.params.device)
    source = Path(snakemake.input.frames)
    frames, stamps, _ = read_frames(source / "frames.h5" if source.is_dir() else source,
                                  expect={"fps": snakemake.params.frames_fps})
    picks = sample_indices(len(frames), v["max_frames"])
    if v["method"] == "halves":
        from avsep.vision import classify_images, describe_halves, label_halves, load_classifier

        model, meta = load_classifier(snakemake.input.model, device)
        classify = lambda images: classify_images(model, images, input_size=meta["input_size"], device=device)
        evidence = [label_halves(frames[i], classify, meta["label_names"]) for i in picks]
        record = describe_halves(item, evidence, picks, stamps, present_threshold=v["present_threshold"],
                                 abstain_margin=v["abstain_margin"], label_names=meta["label_names"])
        if record["uncertain"]:
            log.warning("%s: uncertain (%s); best two by pooled score: %s", item, record["uncertain_reason"],
                        " and ".join(record["instruments"]))
    else:
        from avsep.detector import describe_detections, detect, load_detector
        from avsep.files import read_checkpoint

        d = v["detector"]
        checkpoint = read_checkpoint(snakemake.input.model)
        names = checkpoint["label_names"]
        # Detections down to 0.05 are kept as evidence; d["score_threshold"] decides.
        model = load_detector(checkpoint, len(names), score_threshold=0.05, nms_iou=d["nms_iou"])
        rows = detect(model.to(device), frames[picks], nms_iou=d["nms_iou"], device=device)
        record = describe_detections(item, rows, names, picks, stamps, frame_width=frames.shape[2],
                                     score_threshold=d["score_threshold"], present_threshold=v["present_threshold"],
                                     sides=snakemake.params.two_players)
        if record["below_threshold"]:
            log.warning("%s: fewer than two instruments at score >= %.2f; weaker detections used",
                        item, d["score_threshold"])
    write_json(snakemake.output[0], record)
    log.info("%s: %s (present: %s)", item, " | ".join(record["instruments"]), ", ".join(record["present"]))
