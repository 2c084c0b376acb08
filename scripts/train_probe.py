"""Rule train_probe: the independent audio probes (avsep.probe) on one feature, one per kind,
trained on the train-split solo videos' clips and validated on the val split's."""

import numpy as np
import pandas as pd
import torch

from avsep.dataset import read_manifest
from avsep.devices import pick_device
from avsep.files import read_wav, write_table
from avsep.logs import progress_logger, script_log
from avsep.probe import clip_levels_db, track_features, train_probe

with script_log(snakemake.log[0]) as log:
    torch.set_num_threads(snakemake.threads)
    p = snakemake.params
    cfg = p.probe
    device = pick_device(p.device)
    manifest = read_manifest(snakemake.input.manifest)
    solo = manifest[(manifest["kind"] == "solo") & manifest["split"].isin(["train", "val"])]
    audio_of = {f.split("/")[-1][: -len(".wav")]: f for f in snakemake.input.audio}
    features = [snakemake.wildcards.feature]
    miml = None
    if "miml" in features:
        from avsep.bases import NMFConfig
        from avsep.miml import load_model
        from avsep.transforms import STFTConfig

        model, _ = load_model(snakemake.input.miml, device)
        miml = (model, STFTConfig(**p.stft), NMFConfig(**p.nmf))
    clips = {feature: {"train": [[], []], "val": [[], []]} for feature in features}
    dropped = 0
    progress = progress_logger(log, "solo videos cut into clips")
    for k, row in enumerate(solo.itertuples()):
        wave, sr = read_wav(audio_of[row.video_id])
        loud = clip_levels_db(wave, sr, cfg["clip_seconds"]) > p.silence_db  # silence is no instrument
        dropped += int((~loud).sum())
        for feature in features:
            X = track_features(feature, wave, sr, seconds=cfg["clip_seconds"], miml=miml, device=device)[loud]
            clips[feature][row.split][0].append(X)
            clips[feature][row.split][1] += [row.labels] * len(X)
        progress(k + 1, len(solo))
    rows = []
    for feature, splits in clips.items():
        (Xtr, ytr), (Xva, yva) = [(np.concatenate(x), y) for x, y in (splits["train"], splits["val"])]
        for kind in cfg["kinds"]:
            out = next(f for f in snakemake.output.probes if f.endswith(f"/{feature}_{kind}.pt"))
            probe = train_probe(Xtr, ytr, Xva, yva, kind=kind, feature=feature, seed=cfg["seed"],
                                max_epochs=cfg["max_epochs"], patience=cfg["patience"],
                                feature_params={"sample_rate": sr, "clip_seconds": cfg["clip_seconds"]},
                                log=log.info)
            probe.save(out)
            best = next(r for r in probe.history if r["selected"])
            rows.append({"feature": feature, "probe": kind, "train_clips": len(ytr), "val_clips": len(yva),
                         "epochs": len(probe.history), "best_epoch": best["epoch"],
                         "train_acc": round(best["train_acc"], 4), "val_acc": round(best["val_acc"], 4)})
            log.info("%s %s probe: val accuracy %.3f at epoch %d of %d", feature, kind, best["val_acc"],
                     best["epoch"], len(probe.history))
    log.info("%d silent clips left out", dropped)
    write_table(snakemake.output.history, pd.DataFrame(rows))
