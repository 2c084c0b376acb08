"""Rule evaluate_mixture: SDR, SIR, SAR and SDRi of every method on one test mixture or one
duet with true stems, each source matched to one track (avsep.evaluate.match_tracks)."""

import hashlib

import torch

from avsep.devices import pick_device
from avsep.evaluate import evaluate_mixture, method_estimates
from avsep.files import write_table
from avsep.logs import script_log
from avsep.mixtures import read_item
from avsep.separation import read_separation

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    meta, mixture, sr, stems, true_side = read_item(snakemake.input.item)
    estimates, placement, matched, failed = {}, {}, {}, {}
    for method, folder in zip(p.methods, snakemake.input.separated):
        info, tracks = read_separation(folder)
        estimates[method], matched[method] = method_estimates(mixture, true_side, tracks)
        if info.get("failed"):
            failed[method] = info["failed"]
            log.warning("%s: %s separated nothing (%s); its sources are scored as the mixture",
                        meta["mix_id"], method, info["failed"])
        by_position = [s for s, (_, how) in matched[method].items() if how != "label"]
        if by_position:
            log.info("%s: %s has no track labelled %s; matched %s", meta["mix_id"], method,
                     ", ".join(by_position), ", ".join(f"{s}->{matched[method][s][0] or 'mixture'}" for s in by_position))
        if info.get("labels_from") in ("vision", "folder+vision"):
            side_of = dict(zip(info["instruments"], info["positions"]))
            placement[method] = {
                "visual_correct": set(info["instruments"]) == set(stems),
                # A duet without box annotations has no known sides: not scored.
                "location": {inst: None if true_side[inst] is None else side_of.get(inst) == true_side[inst]
                             for inst in stems},
                "uncertain": bool(info.get("uncertain")) and not info.get("failed"),
            }
    device = pick_device(p.device)
    labels = {}
    if "probe" in snakemake.input.keys():
        from avsep.probe import load_probe, name_tracks

        probe = load_probe(snakemake.input.probe)
        labels["audio"] = {method: name_tracks(probe, by_inst, sr) for method, by_inst in estimates.items()}
        labels["audio"]["mixture"] = dict.fromkeys(stems, name_tracks(probe, {"mixture": mixture}, sr)["mixture"])
    if "miml" in snakemake.input.keys():
        # The MIML network names each track from the track's own bases (it also chose
        # miml_nmf's bases: this accuracy is not independent of that method).
        from avsep.bases import NMFConfig
        from avsep.miml import load_model, predict_instrument
        from avsep.transforms import STFTConfig

        model, model_meta = load_model(snakemake.input.miml, device)
        stft_cfg, nmf_cfg = STFTConfig(**p.stft), NMFConfig(**p.nmf)

        named = {}

        def name(track):
            # Methods often give the same track (miml_nmf and miml_nmf_truth where vision was
            # right): each distinct track is factored once.
            key = hashlib.sha1(track.tobytes()).hexdigest()
            if key not in named:
                named[key] = predict_instrument(model, track, stft_cfg, nmf_cfg, model_meta["label_names"], device)[0]
            return named[key]

        mixture_label = name(mixture)  # the mixture is every source's "estimate": classify it once
        labels["miml_audio"] = {"mixture": dict.fromkeys(stems, mixture_label)}
        labels["miml_audio"].update({method: {inst: name(track) for inst, track in by_inst.items()}
                                     for method, by_inst in estimates.items()})
    table = evaluate_mixture(meta["mix_id"], mixture, stems, estimates, true_side, labels, placement,
                             backend=p.backend, matched=matched, failed=failed)
    table.insert(1, "kind", meta.get("kind", "mixture"))
    write_table(snakemake.output[0], table)
    log.info("%s: mean SDR %s", meta["mix_id"], table.groupby("method")["sdr"].mean().round(2).to_dict())
