"""Rule evaluate_mixture: SDR, SIR, SAR and SDRi of every method on one mixture."""

import json
from pathlib import Path

from avsep.evaluate import evaluate_mixture
from avsep.files import read_wav, write_table
from avsep.logs import script_log

with script_log(snakemake.log[0]) as log:
    mix_dir = Path(snakemake.input.mixture)
    meta = json.loads((mix_dir / "mixture.json").read_text())
    mixture, _ = read_wav(mix_dir / "mixture.wav")
    stems = {s["instrument"]: read_wav(mix_dir / s["stem"])[0] for s in meta["sources"]}
    estimates = {}
    for method, folder in zip(snakemake.params.methods, snakemake.input.separated):
        estimates[method] = {inst: read_wav(Path(folder) / f"{inst}.wav")[0] for inst in stems}
    table = evaluate_mixture(
        meta["mix_id"], mixture, stems, estimates, {s["instrument"]: s["position"] for s in meta["sources"]}
    )
    write_table(snakemake.output[0], table)
    log.info("%s: mean SDR %s", meta["mix_id"], table.groupby("method")["sdr"].mean().round(2).to_dict())
