"""Rule train_deep: mix-and-separate training of the deep separator, with its metrics, its
learning curve and resume."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.deep.pipelines import train_and_save
from avsep.devices import pick_device
from avsep.logs import script_log

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    metrics = train_and_save(snakemake.input.train, snakemake.input.val, snakemake.params.deep,
                             device=pick_device(snakemake.params.device), model_path=snakemake.output.model,
                             metrics_path=snakemake.output.metrics, curves_path=snakemake.output.curves,
                             timing_path=snakemake.output.timing,
                             learning_curve_path=snakemake.output.learning_curve,
                             checkpoint=snakemake.params.checkpoint, log=log)
    best = metrics.loc[metrics["val_sdr"].idxmax()]
    log.info("best: epoch %d, val SDR %.2f dB after %.1f training minutes", best["epoch"], best["val_sdr"],
             metrics["minutes"].iloc[-1])
