"""Rule multisource_table: the mixtures holding an instrument learned from multi-source videos
only, this run beside a normal run (evaluation.compare_with)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from pathlib import Path

import pandas as pd

from avsep.evaluation.multisource import multisource_markdown, multisource_table
from avsep.files import atomic_path, write_table
from avsep.logs import script_log


def read_scores(path):
    text = {"mix_id": str, "instrument": str, "matched_track": str, "failed": str}
    return pd.read_csv(path, sep="\t", keep_default_na=False, na_values=[""], dtype=text)


with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    reference = None
    if p.compare_with:
        path = Path(p.compare_with)
        if not path.is_file():
            raise FileNotFoundError(
                f"evaluation.compare_with: {p.compare_with} (from {Path.cwd()}) does not exist; run the normal "
                "workflow first (make demo for the demo), or empty evaluation.compare_with")
        reference = read_scores(path)
    table, figures = multisource_table(read_scores(snakemake.input[0]), p.excluded, reference,
                                       reference_name=p.compare_with, seed=p.seed)
    write_table(snakemake.output.table, table)
    with atomic_path(snakemake.output.markdown) as tmp:
        tmp.write_text(multisource_markdown(table, figures, p.excluded, p.compare_with))
    log.info("%d mixtures with %s; miml_nmf / normal run's oracle_nmf: %.3f", figures["mixtures"],
             ", ".join(p.excluded), figures["ratio"])
