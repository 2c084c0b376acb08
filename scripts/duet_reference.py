"""Rule duet_reference: a duet with true stems, laid out as a test mixture for scoring."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.vision.annotations import read_annotations
from avsep.files import atomic_dir
from avsep.logs import script_log
from avsep.mixtures import build_duet_reference
from avsep.vision.scores import duet_true_sides

with script_log(snakemake.log[0]) as log:
    vid = snakemake.wildcards.video_id
    stems = dict(zip(snakemake.params.instruments, snakemake.input.stems))
    sides = duet_true_sides(read_annotations(snakemake.input.annotations)) if snakemake.input.get("annotations") else None
    with atomic_dir(snakemake.output[0]) as tmp:
        meta = build_duet_reference(vid, audio=snakemake.input.audio, stems=stems, out_dir=tmp, sides=sides)
    log.info("%s: stems of %s%s", vid, ", ".join(stems),
             f" ({', '.join(f'{i} {s}' for i, s in sides.items())})" if sides else " (sides unknown)")
