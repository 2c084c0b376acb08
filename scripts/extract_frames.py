"""Rule extract_frames: sample and resize a video's frames into one HDF5 file."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.files import write_frame_stream
from avsep.logs import script_log
from avsep.media import iter_frames

with script_log(snakemake.log[0]) as log:
    p = snakemake.params
    # Streamed: one batch of frames in memory at a time, whatever the video's length.
    batches = iter_frames(snakemake.input.video, fps=p.fps, width=p.width, height=p.height)
    n = write_frame_stream(snakemake.output[0], batches, fps=p.fps, source=snakemake.input.video)
    log.info("%s: %d frames of %dx%d", snakemake.input.video, n, p.width, p.height)
