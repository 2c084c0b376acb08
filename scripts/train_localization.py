"""Rule train_localization: the audio-visual head of the av localization maps."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.devices import pick_device
from avsep.logs import script_log
from avsep.vision.localize import train_localization

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    train_localization(snakemake.input.manifest, snakemake.input.frames, snakemake.input.audio,
                       snakemake.input.annotations, snakemake.input.vision_model, snakemake.params.localization,
                       frames_fps=snakemake.params.frames_fps, sample_rate=snakemake.params.sample_rate,
                       device=pick_device(snakemake.params.device), model_path=snakemake.output.model,
                       metrics_path=snakemake.output.metrics, log=log)
