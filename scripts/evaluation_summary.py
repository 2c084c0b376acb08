"""Rule evaluation_summary: every test mixture's and duet's scores in one table each, the
per-method means with their intervals, and a box plot."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import pandas as pd

from avsep.evaluation.markdown import summary_markdown
from avsep.evaluation.summary import METHOD_COLUMNS, summarize
from avsep.files import atomic_path, write_table
from avsep.logs import script_log
from avsep.report.plots import plot_sdr_boxplot

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    order = p.methods

    def tables(paths):
        text = {"mix_id": str, "instrument": str, "matched_track": str, "failed": str}  # ids stay as written
        scores = pd.concat([pd.read_csv(f, sep="\t", keep_default_na=False, na_values=[""], dtype=text)
                            for f in paths], ignore_index=True)
        per_method, per_instrument = summarize(scores, order, reference=p.reference, seed=p.seed)
        shown = per_method[[c for c in METHOD_COLUMNS if c in per_method]].reset_index()
        return scores, per_method, per_instrument, shown

    if not snakemake.input.mixtures and not snakemake.input.duets:
        raise ValueError("nothing to summarize: no test mixture (mixtures.count) and no duet with true stems")
    duets = None
    if snakemake.input.duets:
        duet_table, duet_methods, duet_instruments, duet_shown = tables(snakemake.input.duets)
        duets = (duet_methods, duet_instruments, duet_table["mix_id"].nunique())
        log.info("duets with true stems: mean SDR per method %s", duet_methods["sdr_mean"].to_dict())
    if snakemake.input.mixtures:
        table, per_method, per_instrument, shown = tables(snakemake.input.mixtures)
    else:  # no test mixtures (URMP): the methods' figures and the plot are the duets'
        table, per_method, per_instrument, shown = duet_table.iloc[:0], duet_methods, duet_instruments, duet_shown
        log.info("no test mixtures: the method table and the box plot are the duets'")
    if duets is None:
        duet_table, duet_shown = pd.DataFrame(columns=table.columns), pd.DataFrame(columns=shown.columns)
        log.info("no duet has true stems (<dataset>/stems/<video_id>/): no duet table")
    write_table(snakemake.output.table, table)
    write_table(snakemake.output.methods, shown)
    write_table(snakemake.output.duets, duet_table)
    write_table(snakemake.output.duet_methods, duet_shown)
    with atomic_path(snakemake.output.duet_html) as tmp:  # the report's caption shows it
        tmp.write_text(duet_shown.to_html(index=False, na_rep="", border=0) if len(duet_shown) else
                       "<p>No duet of this dataset has true stems (&lt;dataset&gt;/stems/&lt;video_id&gt;/).</p>")
    with atomic_path(snakemake.output.markdown) as tmp:
        tmp.write_text(summary_markdown(per_method, per_instrument, n_mixtures=table["mix_id"].nunique(),
                                        duets=duets, reference=p.reference))
    with atomic_path(snakemake.output.plot) as tmp:
        plot_sdr_boxplot(table if len(table) else duet_table, order, tmp)
    failed = per_method["failed"][per_method["failed"] > 0].to_dict() if "failed" in per_method else {}
    log.info("mean SDR per method: %s; mixtures separated with nothing: %s", per_method["sdr_mean"].to_dict(),
             failed or "none")
