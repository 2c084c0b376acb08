"""Rule probe_mixture: every audio probe's label for every audible clip of one test
mixture's tracks, the mixture's and every method's (avsep.probe.predict.mixture_tracks);
probe_report gathers them."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.devices import pick_device
from avsep.files import write_table
from avsep.logs import script_log
from avsep.probe.predict import load_probes, mixture_tracks, predict_clips

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    inputs = snakemake.input
    device = pick_device(p.device)
    probes, miml = load_probes(inputs.probes, miml=inputs.miml if "miml" in inputs.keys() else None, stft=p.stft,
                               nmf=p.nmf, device=device)
    sr = next(iter(probes.values())).feature_params["sample_rate"]
    tracks = mixture_tracks(inputs.item, dict(zip(p.methods, inputs.separated)))
    predictions = predict_clips(probes, tracks, sr, silence_db=p.silence_db, miml=miml, device=device)
    write_table(snakemake.output[0], predictions)
    log.info("%s: %d clip labels, %.3f of them right", snakemake.wildcards.mix_id, len(predictions),
             predictions["correct"].mean() if len(predictions) else float("nan"))
