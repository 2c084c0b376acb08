"""Rule demo_dataset: generate the embedded demo dataset, with its splits.tsv (the split
config decides which videos take the held-out looks)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.demo.generate import generate_demo_dataset
from avsep.demo.plan import DemoSpec
from avsep.logs import script_log

with script_log(snakemake.log[0]) as log:
    spec = DemoSpec(**{**snakemake.params.spec, "instruments": tuple(snakemake.params.spec["instruments"])})
    generate_demo_dataset(
        snakemake.output[0],
        spec,
        split=snakemake.params.split,
        workers=snakemake.threads,
        progress=lambda done, total, rel: log.info("[%d/%d] %s", done, total, rel),
    )
