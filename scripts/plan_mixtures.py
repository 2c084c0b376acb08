"""Rule plan_mixtures: choose the test mixtures from the test split."""

from avsep.dataset import read_manifest
from avsep.files import write_table
from avsep.logs import script_log
from avsep.mixtures import plan_mixtures

with script_log(snakemake.log[0]) as log:
    m = snakemake.params.mixtures
    plan = plan_mixtures(
        read_manifest(snakemake.input[0]),
        count=m["count"],
        seconds=m["seconds"],
        seed=m["seed"],
        frame_fps=snakemake.params.frame_fps,
    )
    write_table(snakemake.output[0], plan)
    log.info("%d mixtures planned", len(plan))
