# Stage 3: NMF bases of every 5 s chunk of each training video (solo, and multi-source for
# MIML), cached in HDF5.


rule video_bases:
    input:
        "results/audio/{video_id}.wav",
    output:
        "results/bases/{video_id}.h5",
    log:
        "logs/video_bases/{video_id}.log",
    benchmark:
        "benchmarks/video_bases/{video_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("video_bases")
    resources:
        **resources("video_bases"),
    params:
        # A new cache format reruns the rule (older caches are refused when read).
        format_version=FORMAT_VERSION,
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=device("video_bases"),
    script:
        "../scripts/video_bases.py"


rule bases:
    input:
        lambda w: stage().training_bases(),
