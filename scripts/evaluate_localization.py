"""Rule evaluate_localization: every method's maps against the instruments' boxes."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from pathlib import Path

from avsep.logs import script_log
from avsep.vision.localize import evaluate_localization

with script_log(snakemake.log[0]) as log:
    methods = snakemake.params.methods
    maps = {m: [p for p in snakemake.input.maps if Path(p).parent.name == m] for m in methods}
    summary = evaluate_localization(
        maps, manifest_path=snakemake.input.manifest, annotation_paths=snakemake.input.annotations,
        mixture_dirs={Path(d).name: d for d in snakemake.input.mixtures}, loc=snakemake.params.localization,
        frames_fps=snakemake.params.frames_fps, rows_path=snakemake.output.rows,
        summary_path=snakemake.output.summary, markdown_path=snakemake.output.markdown,
        plot_path=snakemake.output.plot, log=log)
    scored = "ciou50_max_fraction" in summary.columns  # not without boxes (the maps are written all the same)
    for _, row in summary.iterrows() if scored else ():
        log.info("%s: cIoU@0.5 %.3f, AUC %.3f (max fraction); NSA %.3f", row["method"],
                 row["ciou50_max_fraction"], row["auc_max_fraction"], row["nsa"])
