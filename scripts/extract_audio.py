"""Rule extract_audio: decode a video's audio to a mono float WAV, streamed by ffmpeg."""

from avsep.warm import hand_over

hand_over(snakemake)  # run in the warm server's child when there is one (avsep.warm)

from avsep.files import atomic_path
from avsep.logs import script_log
from avsep.media import extract_audio

with script_log(snakemake.log[0]) as log:
    sr = snakemake.params.sample_rate
    with atomic_path(snakemake.output[0]) as tmp:
        n = extract_audio(snakemake.input.video, tmp, sample_rate=sr)
    log.info("%s: %.2f s at %d Hz", snakemake.input.video, n / sr, sr)
