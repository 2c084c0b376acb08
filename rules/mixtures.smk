# Stage 8a: test mixtures by the MUSIC mix-and-separate protocol. The plan is an output of
# the manifest checkpoint (rules/dataset.smk); each mixture is its own job, so deleting one
# mixture's folder reruns only that mixture.


rule build_mixture:
    input:
        unpack(mixture_sources),
    output:
        directory("results/mixtures/{mix_id}"),
    log:
        "logs/build_mixture/{mix_id}.log",
    benchmark:
        "benchmarks/build_mixture/{mix_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        # A new cache format reruns the rule (older caches are refused when read).
        format_version=FORMAT_VERSION,
        plan=mixture_row,
        frames_fps=config["frames"]["fps"],
    script:
        "../scripts/build_mixture.py"


rule mixtures:
    input:
        all_mixtures,
