"""Rule vision_labels: which instruments are on screen in a video or a mixture, and where."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.devices import pick_device
from avsep.files import write_json
from avsep.logs import script_log
from avsep.vision.pipelines import label_item

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    item = snakemake.wildcards.item
    record = label_item(item, snakemake.input.frames, snakemake.input.model, snakemake.params.vision,
                        two_players=snakemake.params.two_players, frames_fps=snakemake.params.frames_fps,
                        device=pick_device(snakemake.params.device), log=log)
    write_json(snakemake.output[0], record)
    log.info("%s: %s (present: %s)", item, " | ".join(record["instruments"]), ", ".join(record["present"]))
