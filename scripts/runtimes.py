"""Rule runtimes: wall time and peak memory per rule, from this run's benchmark files."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.bench.workflow import summarize_benchmarks
from avsep.files import atomic_path, write_table
from avsep.logs import script_log
from avsep.report.plots import plot_runtimes

with script_log(snakemake.log[0]) as log:
    table = summarize_benchmarks(".").sort_values("total_s", ascending=False)
    write_table(snakemake.output.table, table)
    with atomic_path(snakemake.output.plot) as tmp:
        plot_runtimes(table, tmp)
    log.info("%d rules, %.1f s of job time", len(table), table["total_s"].sum())
