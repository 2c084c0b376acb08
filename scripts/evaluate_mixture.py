"""Rule evaluate_mixture (and evaluate_duet): SDR, SIR, SAR and SDRi of every method on one
test mixture or one duet with true stems, each source matched to one track
(avsep.evaluation.item.evaluate_item)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.evaluation.item import evaluate_item
from avsep.files import write_table
from avsep.logs import script_log

with script_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    inputs = snakemake.input
    table = evaluate_item(
        inputs.item,
        dict(zip(p.methods, inputs.separated)),
        backend=p.backend,
        device=p.device,
        probe=inputs.probe if "probe" in inputs.keys() else None,
        miml=inputs.miml if "miml" in inputs.keys() else None,
        tags=inputs.tags if "tags" in inputs.keys() else None,
        stft=p.stft,
        nmf=p.nmf,
    )
    write_table(snakemake.output[0], table)
