# Stage 8b: BSS Eval of every method on every test mixture and every duet with true stems,
# then the aggregate tables.


rule evaluate_mixture:
    input:
        unpack(evaluation_models),
        item="results/mixtures/{mix_id}",
        separated=separated_for_evaluation,
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


rule duet_reference:
    input:
        unpack(duet_reference_inputs),
    output:
        directory("results/duets/{video_id}"),
    log:
        "logs/duet_reference/{video_id}.log",
    conda:
        "../envs/avsep.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        instruments=duet_instruments,
    script:
        "../scripts/duet_reference.py"


rule evaluate_duet:
    input:
        unpack(evaluation_models),
        item="results/duets/{video_id}",
        separated=duet_separations_for_evaluation,
    output:
        "results/eval/duets/{video_id}.tsv",
    log:
        "logs/evaluate_duet/{video_id}.log",
    benchmark:
        "benchmarks/evaluate_duet/{video_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        methods=DUET_METHODS,
        backend=config["evaluation"]["backend"],
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=config["device"],
    script:
        "../scripts/evaluate_mixture.py"


rule evaluation_summary:
    input:
        manifest=MANIFEST,
        mixtures=all_evaluations,
        duets=all_duet_evaluations,
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
        duets="results/eval/duets.tsv",
        duet_html="results/eval/duet_methods.html",
        duet_methods=report(
            "results/eval/duet_methods.tsv",
            caption="../report/eval_duet_methods.rst",
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
        seed=config["evaluation"]["seed"],
        reference=config["evaluation"]["reference"],
    script:
        "../scripts/evaluation_summary.py"


rule evaluate:
    input:
        "results/eval/summary.md",
        "results/eval/vision_summary.tsv",
        "results/probe/accuracy.tsv",


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
