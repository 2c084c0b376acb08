# The deep audio-visual separator (method "deep", avsep/deep/): training clips of the train
# and val solos with what is seen of them, mix-and-separate training, and (separation.smk)
# one job per mixture or duet.


rule deep_data:
    input:
        unpack(lambda w: stage().deep_data_inputs(VISION_MODEL, MANIFEST)),
    output:
        train=layout.DEEP_CLIPS["train"],
        val=layout.DEEP_CLIPS["val"],
    log:
        "logs/deep_data.log",
    benchmark:
        "benchmarks/deep_data.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("deep_data")
    resources:
        **resources("deep_data"),
    params:
        format_version=FORMAT_VERSION,
        deep=DEEP_DATA_PARAMS,
        vision=VISION_TRAIN_PARAMS if config["deep"]["visual"] == "vision" else {},
        videos=lambda w: {s: stage().deep_videos(s) for s in ("train", "val")},
        label_names=lambda w: sorted(
            {v["label"] for s in ("train", "val") for v in stage().deep_videos(s)}
        ),
        frames_fps=config["frames"]["fps"],
        device=device("deep_data"),
    script:
        "../scripts/deep_data.py"


rule train_deep:
    input:
        train=layout.DEEP_CLIPS["train"],
        val=layout.DEEP_CLIPS["val"],
        weights=[config["deep"]["weights"]] if config["deep"]["weights"] else [],
    output:
        model=layout.DEEP_MODEL,
        metrics=report(
            "results/deep/metrics.tsv",
            caption="../report/deep_metrics.rst",
            category="Deep separator",
        ),
        curves=report(
            "results/deep/curves.png",
            caption="../report/deep_curves.rst",
            category="Deep separator",
        ),
        # Training minutes measure the run: these two differ from run to run.
        timing="results/deep/timing.tsv",
        learning_curve=report(
            "results/deep/learning_curve.png",
            caption="../report/deep_learning_curve.rst",
            category="Deep separator",
        ),
    log:
        "logs/train_deep.log",
    benchmark:
        "benchmarks/train_deep.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("train_deep")
    resources:
        **resources("train_deep"),
    params:
        deep=dict(sorted(config["deep"].items())),
        checkpoint="results/deep/resume/checkpoint.pt",
        device=device("train_deep"),
    script:
        "../scripts/train_deep.py"
