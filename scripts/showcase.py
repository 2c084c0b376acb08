"""Rule showcase: one self-contained page of a test mixture for the report."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import json
from pathlib import Path

import pandas as pd

from avsep.files import atomic_path, read_frames, read_wav
from avsep.logs import script_log
from avsep.report.showcase import draw_positions, encode_aac, showcase_page, spectrogram_grid
from avsep.vision.localize import showcase_localization
from avsep.separation import read_separation

with script_log(snakemake.log[0]) as log:
    mix_dir = Path(snakemake.input.mixture)
    meta = json.loads((mix_dir / "mixture.json").read_text())
    vision = json.loads(Path(snakemake.input.vision).read_text())
    mixture, sr = read_wav(mix_dir / "mixture.wav")
    truth = [s["instrument"] for s in sorted(meta["sources"], key=lambda s: s["position"] != "left")]
    groups = [("mixture", [("mixture", mixture)]),
              ("true stems", [(i, read_wav(mix_dir / f"{i}.wav")[0]) for i in truth])]
    for method, folder in zip(snakemake.params.methods, snakemake.input.separated):
        info, tracks = read_separation(folder)
        if info.get("failed"):  # nothing separated: its scores (those of the mixture) say so
            log.warning("%s: %s separated nothing (%s)", meta["mix_id"], method, info["failed"])
            continue
        groups.append((method, [(f"{i} ({p})", audio) for i, p, audio in tracks]))
    frames, _, _ = read_frames(mix_dir / "frames.h5")
    scores = pd.read_csv(snakemake.input.scores, sep="\t")
    overlays = None
    if snakemake.input.get("maps"):
        overlays = showcase_localization(meta, snakemake.input.maps, snakemake.input.annotations,
                                         snakemake.input.manifest, frames, truth)
    page = showcase_page(
        meta["mix_id"],
        frame_image=draw_positions(frames[len(frames) // 2], vision, truth),
        spectrogram_image=spectrogram_grid(groups, sr),
        tracks=[(group, name, encode_aac(audio, sr)) for group, signals in groups for name, audio in signals],
        scores=scores[["method", "instrument", "sdr", "sir", "sar"]].to_dict("records"),
        vision=vision,
        localization_image=overlays,
    )
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(page)
    log.info("%s: %d players, %.1f MB", meta["mix_id"], sum(len(s) for _, s in groups), len(page) / 1e6)
