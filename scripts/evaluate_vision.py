"""Rule evaluate_vision: visual and location accuracy of the vision stage on the test
mixtures and the duets (for duets both as vision names them and with the folder's labels
placed by vision; with separation.labels: audio+vision also with the instruments the audio
names, placed by vision), with bootstrap intervals and a per-instrument confusion matrix."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.logs import script_log
from avsep.vision.pipelines import evaluate_vision

with script_log(snakemake.log[0]) as log:
    out = snakemake.output
    evaluate_vision(snakemake.input.vision, snakemake.input.plan, snakemake.input.manifest, snakemake.input.annotations,
                    per_item_path=out.per_item, summary_path=out.summary, confusion_path=out.confusion, log=log,
                    tag_paths=snakemake.input.tags)
