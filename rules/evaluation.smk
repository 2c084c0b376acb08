# Stage 8b: BSS Eval of every method on every test mixture, then the aggregate tables.


rule evaluate_mixture:
    input:
        mixture="results/mixtures/{mix_id}",
        separated=separated_for_evaluation,
        model="results/miml/model.pt",
    output:
        "results/eval/mixtures/{mix_id}.tsv",
    log:
        "logs/evaluate_mixture/{mix_id}.log",
    benchmark:
        "benchmarks/evaluate_mixture/{mix_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        methods=SEPARATED_METHODS,
        backend=config["evaluation"]["backend"],
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=config["device"],
    script:
        "../scripts/evaluate_mixture.py"


rule evaluation_summary:
    input:
        all_evaluations,
    output:
        table=report(
            "results/eval/summary.tsv",
            caption="../report/eval_summary_table.rst",
            category="Evaluation",
        ),
        methods=report(
            "results/eval/methods.tsv",
            caption="../report/eval_methods.rst",
            category="Evaluation",
        ),
        markdown=report(
            "results/eval/summary.md",
            caption="../report/eval_summary.rst",
            category="Evaluation",
        ),
        plot=report(
            "results/eval/sdr_boxplot.png",
            caption="../report/sdr_boxplot.rst",
            category="Evaluation",
        ),
    log:
        "logs/evaluation_summary.log",
    conda:
        "../envs/avsep.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        methods=config["evaluation"]["methods"],
    script:
        "../scripts/evaluation_summary.py"


rule evaluate:
    input:
        "results/eval/summary.md",
        "results/eval/vision_summary.tsv",


rule evaluate_vision:
    input:
        vision=all_vision_labels,
        manifest=MANIFEST,
        plan=ancient("results/mixtures/plan.tsv"),
        annotations=duet_annotations,
    output:
        per_item="results/eval/vision.tsv",
        summary=report(
            "results/eval/vision_summary.tsv",
            caption="../report/vision_summary.rst",
            category="Vision",
        ),
        confusion=report(
            "results/eval/vision_confusion.png",
            caption="../report/vision_test_confusion.rst",
            category="Vision",
        ),
    log:
        "logs/evaluate_vision.log",
    conda:
        "../envs/avsep.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/evaluate_vision.py"
