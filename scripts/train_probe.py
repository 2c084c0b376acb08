"""Rule train_probe: the independent audio probes (avsep.probe) on one feature, one per kind,
trained on the train-split solo videos' clips and validated on the val split's."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.dataset import read_manifest
from avsep.devices import pick_device
from avsep.files import write_table
from avsep.logs import progress_logger, script_log
from avsep.probe.features import load_miml_feature
from avsep.probe.train import solo_clips, train_probes

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    cfg = p.probe
    device = pick_device(p.device)
    features = [snakemake.wildcards.feature]
    miml = load_miml_feature(snakemake.input.miml, p.stft, p.nmf, device) if "miml" in features else None
    audio_of = {f.split("/")[-1][: -len(".wav")]: f for f in snakemake.input.audio}
    clips, dropped, sr = solo_clips(read_manifest(snakemake.input.manifest), audio_of, features,
                                    seconds=cfg["clip_seconds"], silence_db=p.silence_db, miml=miml, device=device,
                                    progress=progress_logger(log, "solo videos cut into clips"))
    probes, history = train_probes(clips, cfg["kinds"], sample_rate=sr, seconds=cfg["clip_seconds"], seed=cfg["seed"],
                                   max_epochs=cfg["max_epochs"], patience=cfg["patience"], log=log.info)
    for (feature, kind), probe in probes.items():
        probe.save(next(f for f in snakemake.output.probes if f.endswith(f"/{feature}_{kind}.pt")))
    log.info("%d silent clips left out", dropped)
    write_table(snakemake.output.history, history)
