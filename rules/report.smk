# The report's own items: a page per showcased mixture (frame, spectrograms, players) and
# the run times per rule from the benchmark files.


rule showcase:
    input:
        unpack(lambda w: stage().showcase_inputs(w.mix_id)),
    output:
        report(
            "results/report/showcase/{mix_id}.html",
            caption="../report/showcase.rst",
            category="Examples",
            labels={"mixture": "{mix_id}"},
        ),
    log:
        "logs/showcase/{mix_id}.log",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("showcase")
    resources:
        **resources("showcase"),
    params:
        methods=SEPARATED_METHODS,
    script:
        "../scripts/showcase.py"


rule runtimes:
    input:
        "results/eval/summary.tsv",
        lambda w: stage().showcase_pages(),
    output:
        table=report(
            "results/report/runtimes.tsv",
            caption="../report/runtimes.rst",
            category="Run times",
        ),
        plot=report(
            "results/report/runtimes.png",
            caption="../report/runtimes.rst",
            category="Run times",
        ),
    log:
        "logs/runtimes.log",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("runtimes")
    resources:
        **resources("runtimes"),
    script:
        "../scripts/runtimes.py"
