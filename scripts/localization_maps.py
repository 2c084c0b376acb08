"""Rule localization_maps: every localization method's maps of one mixture or duet."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.devices import pick_device
from avsep.logs import script_log
from avsep.vision.localize import localize_item

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    loc = snakemake.params.localization
    localize_item(snakemake.wildcards.item, snakemake.input.frames, snakemake.input.vision_model, loc,
                  two_players=snakemake.params.two_players, max_frames=snakemake.params.max_frames,
                  frames_fps=snakemake.params.frames_fps, device=pick_device(snakemake.params.device),
                  outputs=dict(zip(loc["methods"], snakemake.output)),
                  av_model=snakemake.input.get("av_model"), separated=snakemake.input.get("separated"), log=log)
