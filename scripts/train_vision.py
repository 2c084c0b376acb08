"""Rule train_vision: the vision model (the halves classifier or the detector), trained on
the solo frames or loaded from local weights, with its validation accuracy and confusion
matrix."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.devices import pick_device
from avsep.logs import script_log
from avsep.vision.pipelines import train_vision

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    out = snakemake.output
    train_vision(snakemake.input.manifest, snakemake.input.frames, snakemake.input.annotations,
                 snakemake.params.vision, regions=snakemake.params.regions, frames_fps=snakemake.params.frames_fps,
                 device=pick_device(snakemake.params.device), model_path=out.model, metrics_path=out.metrics,
                 confusion_path=out.confusion, log=log)
