"""Rule manifest: scan, probe and split the dataset into results/manifest.tsv."""

from avsep.dataset import build_manifest
from avsep.files import write_table
from avsep.logs import script_log

with script_log(snakemake.log[0]) as log:
    split = snakemake.params.split
    table = build_manifest(
        snakemake.params.root,
        instruments=snakemake.params.instruments,
        extensions=snakemake.params.extensions,
        seed=split["seed"],
        val_fraction=split["val_fraction"],
        test_fraction=split["test_fraction"],
    )
    write_table(snakemake.output[0], table)
    counts = table.groupby(["kind", "split"]).size().to_dict()
    log.info("manifest: %d videos %s", len(table), counts)
