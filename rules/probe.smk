# Stage 7, continued: the independent audio probes (avsep/probe/): instrument classifiers
# trained on the train-split solo clips, which judge every method's tracks without sharing
# parameters with any separation method.


rule train_probe:
    input:
        unpack(lambda w: stage().probe_training_inputs(w.feature, MANIFEST)),
    output:
        probes=expand(
            "results/probe/{{feature}}_{kind}.pt", kind=config["probe"]["kinds"]
        ),
        history="results/probe/training_{feature}.tsv",
    log:
        "logs/train_probe/{feature}.log",
    benchmark:
        "benchmarks/train_probe/{feature}.tsv"
    wildcard_constraints:
        feature="|".join(PROBE_FEATURES),
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("train_probe")
    resources:
        **resources("train_probe"),
    params:
        probe=config["probe"],
        silence_db=config["nmf"]["silence_db"],
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=device("train_probe"),
    script:
        "../scripts/train_probe.py"


rule probe_mixture:
    input:
        unpack(lambda w: stage().probe_mixture_inputs(w.mix_id)),
    output:
        "results/probe/mixtures/{mix_id}.tsv",
    log:
        "logs/probe_mixture/{mix_id}.log",
    benchmark:
        "benchmarks/probe_mixture/{mix_id}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("probe_mixture")
    resources:
        **resources("probe_mixture"),
    params:
        methods=SEPARATED_METHODS,
        silence_db=config["nmf"]["silence_db"],
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=device("probe_mixture"),
    script:
        "../scripts/probe_mixture.py"


rule probe_report:
    input:
        unpack(lambda w: stage().probe_report_inputs(MANIFEST)),
    output:
        table=report(
            "results/probe/accuracy.tsv",
            caption="../report/probe_accuracy.rst",
            category="Evaluation",
        ),
        predictions="results/probe/predictions.tsv",
        confusion=report(
            "results/probe/confusion.png",
            caption="../report/probe_confusion.rst",
            category="Evaluation",
        ),
    log:
        "logs/probe_report.log",
    benchmark:
        "benchmarks/probe_report.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("probe_report")
    resources:
        **resources("probe_report"),
    params:
        methods=SEPARATED_METHODS,
        main=Path(PROBE_MODEL).stem,
        seed=config["evaluation"]["seed"],
        silence_db=config["nmf"]["silence_db"],
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=device("probe_report"),
    script:
        "../scripts/probe_report.py"
