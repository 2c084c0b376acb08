"""Rule extract_frames: sample and resize a video's frames into one HDF5 file."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.files import write_frames
from avsep.logs import script_log
from avsep.media import decode_frames

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    frames, stamps = decode_frames(snakemake.input.video, fps=p.fps, width=p.width, height=p.height)
    write_frames(snakemake.output[0], frames, stamps, fps=p.fps, source=snakemake.input.video)
    log.info("%s: %d frames of %dx%d", snakemake.input.video, len(frames), p.width, p.height)
