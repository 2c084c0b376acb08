"""Rule train_miml: train the deep MIML network, with a metrics log, curves and resume."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from pathlib import Path

import torch

from avsep.devices import pick_device
from avsep.files import atomic_path, write_table
from avsep.logs import script_log
from avsep.miml.bags import read_bags
from avsep.miml.model import MIMLConfig, save_model
from avsep.miml.train import train_miml
from avsep.report.plots import plot_training_curves

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    cfg = MIMLConfig.from_config(snakemake.params.miml)
    train, val = read_bags(snakemake.input.train), read_bags(snakemake.input.val)
    checkpoint = Path(snakemake.params.checkpoint)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    model, metrics = train_miml(
        train, val, cfg, device=pick_device(snakemake.params.device), checkpoint=checkpoint, log=log.info
    )
    save_model(snakemake.output.model, model, cfg, train.label_names, metrics=metrics.to_dict("list"))
    write_table(snakemake.output.metrics, metrics.round(5))
    with atomic_path(snakemake.output.curves) as tmp:
        plot_training_curves(metrics, tmp)
    checkpoint.unlink()  # finished: the next run starts afresh
    last = metrics.iloc[-1]
    log.info("final: val_acc %.3f val_map %.3f", last["val_acc"], last["val_map"])
