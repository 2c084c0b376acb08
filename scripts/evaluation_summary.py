"""Rule evaluation_summary: every mixture's scores in one table, the means and a box plot."""

import pandas as pd

from avsep.evaluate import summarize, summary_markdown
from avsep.files import atomic_path, write_table
from avsep.logs import script_log
from avsep.plots import plot_sdr_boxplot

with script_log(snakemake.log[0]) as log:
    table = pd.concat([pd.read_csv(p, sep="\t") for p in snakemake.input], ignore_index=True)
    order = snakemake.params.methods
    write_table(snakemake.output.table, table)
    per_method, per_instrument = summarize(table, order)
    means = ["sdr_mean", "sir_mean", "sar_mean", "sdri_mean", "audio_acc", "visual_acc", "location_acc"]
    write_table(snakemake.output.methods,
                per_method[["sources", *[c for c in means if c in per_method]]].reset_index())
    with atomic_path(snakemake.output.markdown) as tmp:
        tmp.write_text(summary_markdown(per_method, per_instrument, n_mixtures=table["mix_id"].nunique()))
    with atomic_path(snakemake.output.plot) as tmp:
        plot_sdr_boxplot(table, order, tmp)
    log.info("mean SDR per method: %s", per_method["sdr_mean"].to_dict())
