"""Rule separate_nmf: guided NMF separation of one mixture or duet with fixed dictionaries."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import json
from pathlib import Path

import torch

from avsep.devices import pick_device
from avsep.dictionary import read_dictionaries
from avsep.errors import InputError
from avsep.files import atomic_dir, read_wav, write_json, write_wav
from avsep.logs import script_log
from avsep.separation import guided_nmf_separate, track_assignment
from avsep.transforms import STFTConfig
from avsep.vision.labels import VISION_LABELS, visible_from

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    cfg = STFTConfig(**p.stft)
    source = Path(snakemake.input.audio)
    audio, sr = read_wav(source / "mixture.wav" if source.is_dir() else source)
    visible, labels_from = p.visible, p.separation["labels"]
    if "vision" in snakemake.input.keys():
        tags = json.loads(Path(snakemake.input.tags).read_text()) if "tags" in snakemake.input.keys() else None
        visible, labels_from = visible_from(json.loads(Path(snakemake.input.vision).read_text()), labels_from,
                                            p.known_labels, tags)
    instruments, positions = visible["instruments"], visible["positions"]
    item = snakemake.wildcards.item
    record = {"method": f"{snakemake.wildcards.dictionary}_nmf{snakemake.wildcards.via}", "item": item,
              "instruments": instruments, "positions": positions, "labels_from": labels_from,
              "uncertain": bool(visible.get("uncertain", False))}
    estimates = []
    if len(set(instruments)) < 2:
        problem = (f"{labels_from} labels name {', '.join(instruments) or 'no instrument'}; "
                   "guided separation needs two different instruments")
        if labels_from not in VISION_LABELS:
            raise InputError(f"{item}: {problem}")
        # Vision failed: nothing is separated, and evaluation scores the sources as the mixture.
        log.warning("%s: %s: nothing separated", item, problem)
        record.update(instruments=[], positions=[], uncertain=True, failed=problem, vision_named=instruments)
    else:
        if visible.get("uncertain"):
            log.warning("%s: %s is uncertain (%s); separating %s", item, labels_from,
                        visible.get("uncertain_reason", ""), " and ".join(instruments))
        dictionaries, _ = read_dictionaries(snakemake.input.dictionary, instruments)
        estimates, objective, iterations = guided_nmf_separate(
            audio,
            [dictionaries[i].W for i in instruments],
            cfg,
            chunk_seconds=p.chunk_seconds,
            n_iter=p.separation["n_iter"],
            tol=p.separation["tol"],
            loss=p.beta if p.loss == "beta" else p.loss,
            mask_power=p.separation["mask_power"],
            device=pick_device(p.device),
        )
        record.update(objective_per_chunk=[float(o) for o in objective], iterations=iterations,
                      dictionary_sizes={i: int(dictionaries[i].W.shape[1]) for i in instruments})
        log.info("%s: %s separated", item, " | ".join(instruments))
    with atomic_dir(snakemake.output[0]) as tmp:
        for inst, est in zip(record["instruments"], estimates):
            write_wav(tmp / f"{inst}.wav", est, sr)
        write_json(tmp / "separation.json", record)
        write_json(tmp / "assignment.json", track_assignment(item, {**visible, **record}, labels_from))
