"""Rule evaluate_mixture: SDR, SIR, SAR and SDRi of every method on one mixture."""

import json
from pathlib import Path

import torch

from avsep.bases import NMFConfig
from avsep.devices import pick_device
from avsep.evaluate import evaluate_mixture
from avsep.miml import load_model, predict_instrument
from avsep.transforms import STFTConfig
from avsep.files import read_wav, write_table
from avsep.logs import script_log

with script_log(snakemake.log[0]) as log:
    mix_dir = Path(snakemake.input.mixture)
    meta = json.loads((mix_dir / "mixture.json").read_text())
    mixture, _ = read_wav(mix_dir / "mixture.wav")
    stems = {s["instrument"]: read_wav(mix_dir / s["stem"])[0] for s in meta["sources"]}
    true_side = {s["instrument"]: s["position"] for s in meta["sources"]}
    estimates, placement = {}, {}
    for method, folder in zip(snakemake.params.methods, snakemake.input.separated):
        info = json.loads((Path(folder) / "separation.json").read_text())
        side_of = dict(zip(info["instruments"], info["positions"]))
        track_at = {pos: inst for inst, pos in side_of.items()}
        # A source is scored against the track given its label, or, when vision named
        # another instrument, against the track placed on the source's side.
        estimates[method] = {
            inst: read_wav(Path(folder) / f"{inst if inst in side_of else track_at[true_side[inst]]}.wav")[0]
            for inst in stems
        }
        if info.get("labels_from") == "vision":
            placement[method] = {
                "visual_correct": set(info["instruments"]) == set(stems),
                "location": {inst: side_of.get(inst) == true_side[inst] for inst in stems},
            }
    # Audio accuracy: the MIML classifier names each track from the track's own bases.
    torch.set_num_threads(snakemake.threads)
    device = pick_device(snakemake.params.device)
    model, model_meta = load_model(snakemake.input.model, device)
    stft_cfg, nmf_cfg = STFTConfig(**snakemake.params.stft), NMFConfig(**snakemake.params.nmf)
    def name(track):
        return predict_instrument(model, track, stft_cfg, nmf_cfg, model_meta["label_names"], device)[0]

    mixture_label = name(mixture)  # the mixture is every source's "estimate": classify it once
    audio_labels = {"mixture": {inst: mixture_label for inst in stems}}
    audio_labels.update({method: {inst: name(track) for inst, track in by_inst.items()}
                         for method, by_inst in estimates.items()})
    table = evaluate_mixture(meta["mix_id"], mixture, stems, estimates, true_side, audio_labels, placement,
                             backend=snakemake.params.backend)
    write_table(snakemake.output[0], table)
    log.info("%s: mean SDR %s", meta["mix_id"], table.groupby("method")["sdr"].mean().round(2).to_dict())
