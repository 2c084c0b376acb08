"""Rule fetch_report: the rows of every fetched video in results/fetch/report.tsv, the counts
per category and status in results/fetch/summary.tsv, the ids listed more than once in
results/fetch/leaks.tsv, and the summary line in the log."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

import pandas as pd

from avsep.fetch import LEAK_COLUMNS, REPORT_COLUMNS, summarize_report, summary_line
from avsep.files import write_table
from avsep.logs import script_log

with script_log(snakemake.log[0]) as log:
    rows = [pd.read_csv(path, sep="\t", dtype={"video_id": str}, keep_default_na=False) for path in snakemake.input]
    report = pd.concat(rows, ignore_index=True)[REPORT_COLUMNS] if rows else pd.DataFrame(columns=REPORT_COLUMNS)
    leaks = pd.DataFrame(snakemake.params.leaks, columns=LEAK_COLUMNS)
    write_table(snakemake.output.report, report)
    write_table(snakemake.output.summary, summarize_report(report))
    write_table(snakemake.output.leaks, leaks)
    for row in report[report["status"] != "ok"].itertuples():
        log.warning("%s (%s): %s - %s", row.video_id, row.category, row.status, row.reason)
    for row in leaks.itertuples():
        log.warning("%s is listed more than once: kept as %s; also %s", row.video_id, row.kept, row.also_listed)
    log.info("%s", summary_line(report))
    if len(leaks):
        log.warning("%d id(s) listed more than once, each fetched once: %s", len(leaks), snakemake.output.leaks)
