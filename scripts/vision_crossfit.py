"""Rule vision_crossfit: the training solos' vision labels for MIML (miml.labels: vision), each
from a vision model trained without it (k-fold cross-fitting, miml.vision_folds)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.devices import pick_device
from avsep.files import write_json
from avsep.logs import script_log
from avsep.vision.pipelines import crossfit_labels

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    result = crossfit_labels(snakemake.input.manifest, snakemake.input.frames, snakemake.input.annotations, p.vision,
                             p.videos, folds=p.folds, regions=p.regions, frames_fps=p.frames_fps,
                             device=pick_device(p.device), log=log)
    write_json(snakemake.output[0], result)
