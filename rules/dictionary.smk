# Stage 5, basis selection: per-instrument basis dictionaries. "oracle" pools the bases of each instrument's
# training videos by folder label; the MIML stage adds "miml".


rule oracle_dictionary:
    input:
        manifest=MANIFEST,
        bases=lambda w: stage().oracle_bases(),
    output:
        "results/dictionary/oracle.h5",
    log:
        "logs/oracle_dictionary.log",
    benchmark:
        "benchmarks/oracle_dictionary.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("oracle_dictionary")
    resources:
        **resources("oracle_dictionary"),
    params:
        # A new cache format reruns the rule (older caches are refused when read).
        format_version=FORMAT_VERSION,
        dictionary=dict(sorted(config["dictionary"].items())),
        expect=dict(stft=STFT_PARAMS, nmf=NMF_PARAMS),
        videos=lambda wildcards: stage().video_facts(stage().oracle_solos()),
    script:
        "../scripts/oracle_dictionary.py"
