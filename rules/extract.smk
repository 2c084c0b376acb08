# Stage 1: extraction with ffmpeg. One audio file and one frames file per video.


rule extract_audio:
    input:
        video=video_path,
    output:
        "results/audio/{video_id}.wav",
    log:
        "logs/extract_audio/{video_id}.log",
    benchmark:
        "benchmarks/extract_audio/{video_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("extract_audio")
    resources:
        **resources("extract_audio"),
    params:
        sample_rate=config["audio"]["sample_rate"],
    script:
        "../scripts/extract_audio.py"


rule extract_frames:
    input:
        video=video_path,
    output:
        "results/frames/{video_id}.h5",
    log:
        "logs/extract_frames/{video_id}.log",
    benchmark:
        "benchmarks/extract_frames/{video_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("extract_frames")
    resources:
        **resources("extract_frames"),
    params:
        # A new cache format reruns the rule (older caches are refused when read).
        format_version=FORMAT_VERSION,
        sampling=FRAME_SAMPLING,  # a change of which frame a time stamp takes reruns it too
        fps=config["frames"]["fps"],
        width=config["frames"]["width"],
        height=config["frames"]["height"],
    script:
        "../scripts/extract_frames.py"


rule extract:
    input:
        lambda w: stage().extracted(),
