# Stage 1, continued: test mixtures by the MUSIC mix-and-separate protocol. The plan is an output of
# the manifest checkpoint (rules/dataset.smk); each mixture is its own job, so deleting one
# mixture's folder reruns only that mixture.


rule build_mixture:
    input:
        unpack(lambda w: stage().mixture_sources(w.mix_id)),
    output:
        directory("results/mixtures/{mix_id}"),
    log:
        "logs/build_mixture/{mix_id}.log",
    benchmark:
        "benchmarks/build_mixture/{mix_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("build_mixture")
    resources:
        **resources("build_mixture"),
    params:
        # A new cache format reruns the rule (older caches are refused when read).
        format_version=FORMAT_VERSION,
        plan=lambda w: stage().plan_row(w.mix_id),
        frames_fps=config["frames"]["fps"],
    script:
        "../scripts/build_mixture.py"


rule mixtures:
    input:
        lambda w: stage().all_mixtures(),
