"""Rule build_mixture: write one test mixture, its stems, frames and metadata."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.files import atomic_dir
from avsep.logs import script_log
from avsep.mixtures import build_mixture

with script_log(snakemake.log[0]) as log:
    with atomic_dir(snakemake.output[0]) as tmp:
        meta = build_mixture(
            snakemake.params.plan,
            left_audio=snakemake.input.left_audio,
            right_audio=snakemake.input.right_audio,
            left_frames=snakemake.input.left_frames,
            right_frames=snakemake.input.right_frames,
            out_dir=tmp,
            frame_fps=snakemake.params.frames_fps,
        )
    log.info("%s: %s", meta["mix_id"], " | ".join(meta["instruments"]))
