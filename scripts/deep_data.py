"""Rule deep_data: the deep separator's train and val clips (audio at the model's rate,
what is seen of each solo)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.deep.data import write_clips
from avsep.deep.model import DeepConfig
from avsep.deep.pipelines import build_clips
from avsep.deep.spectral import DeepAudio
from avsep.devices import pick_device
from avsep.logs import script_log

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    cfg, audio = DeepConfig.from_config(p.deep), DeepAudio.from_config(p.deep["audio"])
    for split in ("train", "val"):
        clips = build_clips(p.videos[split], cfg, audio, label_names=p.label_names, v=p.vision,
                            vision_model=snakemake.input.get("vision_model"), frames_fps=p.frames_fps,
                            device=pick_device(p.device), log=log)
        write_clips(snakemake.output[split], clips, split=split)
        log.info("%s: %d clips of %s", split, len(clips), ", ".join(sorted(set(clips.labels))))
