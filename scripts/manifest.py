"""Rule manifest: scan, probe and split the dataset into results/manifest.tsv; the videos
left out (dataset.on_bad_input: skip) go to results/manifest_rejected.tsv with the reason,
and the test mixtures are planned into results/mixtures/plan.tsv."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.dataset import build_manifest
from avsep.files import write_table
from avsep.logs import progress_logger, script_log
from avsep.mixtures import plan_mixtures

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    table, rejected = build_manifest(
        p.root,
        instruments=p.instruments,
        extensions=p.extensions,
        seed=p.split["seed"],
        val_fraction=p.split["val_fraction"],
        test_fraction=p.split["test_fraction"],
        # Not a param: a chunk length change would re-make the manifest, and a dry run could
        # not list the reruns after it (see config/README.md, nmf.chunk_seconds).
        chunk_seconds=snakemake.config["nmf"]["chunk_seconds"],
        max_seconds=p.max_seconds,
        on_bad_input=p.on_bad_input,
        progress=progress_logger(log, "probed videos"),
        workers=snakemake.threads,
    )
    # The test mixtures: two held-out solo videos of different instruments each.
    m = p.mixtures
    plan = plan_mixtures(table, count=m["count"], seconds=m["seconds"], seed=m["seed"], frame_fps=p.frame_fps)
    write_table(snakemake.output.rejected, rejected)
    write_table(snakemake.output.plan, plan)
    write_table(snakemake.output.manifest, table)
    counts = table.groupby(["kind", "split"]).size().to_dict()
    log.info("manifest: %d videos %s; %d mixtures planned", len(table), counts, len(plan))
    for row in rejected.itertuples():
        log.warning("left out %s", f"{row.path}: {row.reason}")
    if len(rejected):
        log.warning("%d video(s) left out, listed in %s", len(rejected), snakemake.output.rejected)
