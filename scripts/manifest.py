"""Rule manifest: scan, probe and split the dataset into results/manifest.tsv; the videos
left out (dataset.on_bad_input: skip) go to results/manifest_rejected.tsv with the reason."""

from avsep.dataset import build_manifest
from avsep.files import write_table
from avsep.logs import script_log

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    step = 1

    def progress(done, total):
        global step
        if done * 10 >= step * total or done == total:
            log.info("probed %d/%d videos", done, total)
            step = done * 10 // total + 1

    table, rejected = build_manifest(
        p.root,
        instruments=p.instruments,
        extensions=p.extensions,
        seed=p.split["seed"],
        val_fraction=p.split["val_fraction"],
        test_fraction=p.split["test_fraction"],
        # Not a param: a chunk length change would re-make the manifest and, through the
        # checkpoint, defer half of the reruns it causes to a second invocation.
        chunk_seconds=snakemake.config["nmf"]["chunk_seconds"],
        max_seconds=p.max_seconds,
        on_bad_input=p.on_bad_input,
        progress=progress,
    )
    write_table(snakemake.output.rejected, rejected)
    write_table(snakemake.output.manifest, table)
    counts = table.groupby(["kind", "split"]).size().to_dict()
    log.info("manifest: %d videos %s", len(table), counts)
    for row in rejected.itertuples():
        log.warning("left out %s", f"{row.path}: {row.reason}")
    if len(rejected):
        log.warning("%d video(s) left out, listed in %s", len(rejected), snakemake.output.rejected)
