# Stage 7: BSS Eval of every method on every test mixture and every duet with true stems,
# then the aggregate tables.


rule evaluate_mixture:
    input:
        unpack(lambda w: stage().evaluation_models(w.mix_id)),
        item="results/mixtures/{mix_id}",
        separated=lambda w: stage().separated_for(w.mix_id, SEPARATED_METHODS),
    output:
        "results/eval/mixtures/{mix_id}.tsv",
    log:
        "logs/evaluate_mixture/{mix_id}.log",
    benchmark:
        "benchmarks/evaluate_mixture/{mix_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("evaluate_mixture")
    resources:
        **resources("evaluate_mixture"),
    params:
        methods=SEPARATED_METHODS,
        backend=config["evaluation"]["backend"],
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=device("evaluate_mixture"),
    script:
        "../scripts/evaluate_mixture.py"


rule duet_reference:
    input:
        unpack(lambda w: stage().duet_reference_inputs(w.video_id, MANIFEST)),
    output:
        directory("results/duets/{video_id}"),
    log:
        "logs/duet_reference/{video_id}.log",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("duet_reference")
    resources:
        **resources("duet_reference"),
    params:
        instruments=lambda w: stage().video_labels(w.video_id),
    script:
        "../scripts/duet_reference.py"


rule evaluate_duet:
    input:
        unpack(lambda w: stage().evaluation_models(w.video_id)),
        item="results/duets/{video_id}",
        separated=lambda w: stage().separated_for(w.video_id, DUET_METHODS),
    output:
        "results/eval/duets/{video_id}.tsv",
    log:
        "logs/evaluate_duet/{video_id}.log",
    benchmark:
        "benchmarks/evaluate_duet/{video_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("evaluate_duet")
    resources:
        **resources("evaluate_duet"),
    params:
        methods=DUET_METHODS,
        backend=config["evaluation"]["backend"],
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=device("evaluate_duet"),
    script:
        "../scripts/evaluate_mixture.py"


rule evaluation_summary:
    input:
        manifest=MANIFEST,
        mixtures=lambda w: stage().all_evaluations(),
        duets=lambda w: stage().all_duet_evaluations(),
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
    threads: jobs.threads("evaluation_summary")
    resources:
        **resources("evaluation_summary"),
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
        vision=lambda w: stage().all_vision_labels(),
        manifest=MANIFEST,
        plan=ancient("results/mixtures/plan.tsv"),
        annotations=lambda w: stage().duet_annotations(),
        tags=lambda w: stage().all_audio_tags(),
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
    threads: jobs.threads("evaluate_vision")
    resources:
        **resources("evaluate_vision"),
    script:
        "../scripts/evaluate_vision.py"


# miml.solo_excluded: the multi-source experiment's table, beside a normal run's scores
# (evaluation.compare_with) on the same mixtures.
rule multisource_table:
    input:
        "results/eval/summary.tsv",
    output:
        table="results/eval/multisource.tsv",
        markdown=report(
            "results/eval/multisource.md",
            caption="../report/eval_multisource.rst",
            category="Evaluation",
        ),
    log:
        "logs/multisource_table.log",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("multisource_table")
    resources:
        **resources("multisource_table"),
    params:
        excluded=config["miml"]["solo_excluded"],
        compare_with=config["evaluation"]["compare_with"],
        seed=config["evaluation"]["seed"],
    script:
        "../scripts/multisource_table.py"
