"""Rule dataset_overview: counts per instrument and split, a bar plot and a contact sheet."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from pathlib import Path

from avsep.dataset import read_manifest
from avsep.files import atomic_path, read_frames, write_table
from avsep.logs import script_log
from avsep.report.overview import contact_sheet, dataset_summary
from avsep.report.plots import plot_split_counts

with script_log(snakemake.log[0]) as log:
    manifest = read_manifest(snakemake.input.manifest)
    summary = dataset_summary(manifest)
    write_table(snakemake.output.summary, summary)
    with atomic_path(snakemake.output.plot) as tmp:
        plot_split_counts(summary, tmp)
    frames_of = {Path(p).stem: p for p in snakemake.input.frames}
    tiles = []
    # A few videos per label keep the sheet readable on datasets of thousands of videos.
    for _, row in manifest.groupby("labels").head(snakemake.params.per_label).iterrows():
        frames, _, _ = read_frames(frames_of[row["video_id"]])
        tiles.append((frames[len(frames) // 2], f"{row['labels']} ({row['split']})"))
    with atomic_path(snakemake.output.sheet) as tmp:
        contact_sheet(tiles).save(tmp, format="PNG")
    log.info("%d videos over %d labels", len(manifest), len(summary))
