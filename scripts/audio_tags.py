"""Rule audio_tags: the instruments the MIML network hears in a test mixture or duet
(``separation.labels: audio+vision`` and ``folder+audio+vision``)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from pathlib import Path

import torch

from avsep.bases import NMFConfig
from avsep.devices import pick_device
from avsep.files import read_wav, write_json
from avsep.logs import script_log
from avsep.miml.model import load_model
from avsep.miml.predict import audio_tags
from avsep.transforms import STFTConfig

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    item = snakemake.wildcards.item
    source = Path(snakemake.input.audio)
    audio, sr = read_wav(source / "mixture.wav" if source.is_dir() else source)
    device = pick_device(p.device)
    model, meta = load_model(snakemake.input.model, device)
    tags = audio_tags(model, audio, STFTConfig(**p.stft), NMFConfig(**p.nmf), meta["label_names"], device)
    write_json(snakemake.output[0], {"item": item, **tags})
    if tags["silent"]:
        log.warning("%s: every chunk is silent; audio names nothing", item)
    else:
        log.info("%s: heard %s over %d chunks", item,
                 ", ".join(f"{n} {tags['scores'][n]:.3f}" for n in tags["ranked"][:3]), tags["chunks"])
