"""Rule extract_audio: decode a video's audio to a mono float WAV."""

from avsep.files import write_wav
from avsep.logs import script_log
from avsep.media import decode_audio

with script_log(snakemake.log[0]) as log:
    sr = snakemake.params.sample_rate
    audio = decode_audio(snakemake.input.video, sample_rate=sr)
    write_wav(snakemake.output[0], audio, sr)
    log.info("%s: %.2f s at %d Hz", snakemake.input.video, len(audio) / sr, sr)
