"""Rule video_bases: NMF bases of every chunk of one video's audio, streamed from the WAV."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import torch

from avsep.bases import NMFConfig, bases_of_file
from avsep.devices import pick_device
from avsep.logs import script_log
from avsep.transforms import STFTConfig

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    stft_cfg = STFTConfig(**snakemake.params.stft)
    nmf_cfg = NMFConfig(**snakemake.params.nmf)
    bases = bases_of_file(
        snakemake.input[0],
        snakemake.output[0],
        stft_cfg,
        nmf_cfg,
        device=pick_device(snakemake.params.device),
        progress=lambda done, total: log.info("%d/%d chunks", done, total),
        source=snakemake.input[0],
    )
    if len(bases.active) == 0:
        log.warning(
            "%s is shorter than one chunk (nmf.chunk_seconds %g s): it gives no bases. The manifest "
            "rejects such videos; after raising nmf.chunk_seconds, re-check it with --forcerun manifest",
            snakemake.input[0], nmf_cfg.chunk_seconds,
        )
    log.info(
        "%s: %d chunks, %d silent, mean divergence %.4g",
        snakemake.input[0], len(bases.active), int((~bases.active).sum()),
        float(bases.objective[bases.active].mean()) if bases.active.any() else 0.0,
    )
