"""Rule video_bases: NMF bases of every chunk of one video's audio."""

import torch

from avsep.bases import NMFConfig, bases_params, compute_bases, write_bases
from avsep.devices import pick_device
from avsep.files import read_wav
from avsep.logs import script_log
from avsep.transforms import STFTConfig

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    stft_cfg = STFTConfig(**snakemake.params.stft)
    nmf_cfg = NMFConfig(**snakemake.params.nmf)
    audio, sr = read_wav(snakemake.input[0])
    if sr != stft_cfg.sample_rate:
        raise ValueError(f"{snakemake.input[0]} is at {sr} Hz, the config says {stft_cfg.sample_rate}")
    bases = compute_bases(audio, stft_cfg, nmf_cfg, device=pick_device(snakemake.params.device))
    write_bases(snakemake.output[0], bases, bases_params(stft_cfg, nmf_cfg), source=snakemake.input[0])
    log.info(
        "%s: %d chunks, %d silent, mean divergence %.4g",
        snakemake.input[0], len(bases.active), int((~bases.active).sum()),
        float(bases.objective[bases.active].mean()) if bases.active.any() else float("nan"),
    )
