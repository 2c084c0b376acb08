"""Rule transfer_<rule>: the outputs of a training rule, copied from the run named by
transfer.run after checking that this run can use them (avsep/transfer.py)."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.logs import script_log
from avsep.transfer import transfer_file

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    for source, dest in zip(snakemake.input.files, snakemake.output):
        transfer_file(source, dest, instruments=p.instruments, stft=p.stft, nmf=p.nmf)
        log.info("%s: %s from %s", p.trained, dest, source)
