"""Rule urmp_dataset: a URMP root (dataset.layout: urmp) as a MUSIC-layout dataset of duets
with their true stems, every piece in the test split (avsep/urmp.py), and the table of every
piece, used or skipped with the reason, in results/urmp/pieces.tsv."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.dataset import DatasetError
from avsep.files import atomic_dir, write_table
from avsep.logs import progress_logger, script_log
from avsep.urmp import read_urmp, write_layout

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    pieces, problems = read_urmp(p.root, known=p.known, progress=progress_logger(log, "URMP pieces read"))
    if problems and p.on_bad_input == "fail":
        raise DatasetError(problems, hint="Set dataset.on_bad_input: skip to leave these pieces out and carry on.")
    with atomic_dir(snakemake.output.root) as tmp:
        table = write_layout(pieces, tmp)
    write_table(snakemake.output.pieces, table)
    for row in table[table["status"] == "skipped"].itertuples():
        log.warning("skipped %s: %s", row.piece, row.reason)
    used = table[table["status"] == "used"]
    log.info("URMP: %d of %d pieces used as test duets (%s); %d skipped, listed in %s", len(used), len(table),
             ", ".join(sorted(set(used["instruments"]))) or "none", len(table) - len(used), snakemake.output.pieces)
    if used.empty:
        raise DatasetError(["no URMP piece is usable: " + "; ".join(f"{r.piece}: {r.reason}"
                                                                    for r in table.itertuples())])
