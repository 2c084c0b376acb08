"""Rule separate_irm: the ideal ratio mask from the true stems (the upper bound)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import json
from pathlib import Path

from avsep.files import atomic_dir, read_wav, write_json, write_wav
from avsep.logs import script_log
from avsep.separation import apply_masks, ideal_ratio_masks
from avsep.transforms import STFTConfig

with script_log(snakemake.log[0]) as log:
    cfg = STFTConfig(**snakemake.params.stft)
    mix_dir = Path(snakemake.input[0])
    meta = json.loads((mix_dir / "mixture.json").read_text())
    mixture, sr = read_wav(mix_dir / "mixture.wav")
    instruments = [s["instrument"] for s in meta["sources"]]
    stems = [read_wav(mix_dir / s["stem"])[0] for s in meta["sources"]]
    estimates = apply_masks(mixture, ideal_ratio_masks(stems, cfg, snakemake.params.mask_power), cfg)
    with atomic_dir(snakemake.output[0]) as tmp:
        for inst, est in zip(instruments, estimates):
            write_wav(tmp / f"{inst}.wav", est, sr)
        write_json(tmp / "separation.json", {
            "method": "irm", "item": meta["mix_id"], "instruments": instruments,
            "positions": [s["position"] for s in meta["sources"]], "labels_from": "truth",
        })
    log.info("%s: ideal ratio masks applied", meta["mix_id"])
