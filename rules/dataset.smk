# Stage 0: the inputs. The embedded demo dataset (when dataset.root is empty) and the
# manifest with the test mixture plan: a checkpoint, because the videos and mixtures it lists
# decide the rest of the DAG. The plan is made in the same job on purpose: a checkpoint that
# depends on another makes Snakemake put off part of the reruns to a second invocation.


rule demo_dataset:
    output:
        directory(DEMO_ROOT),
    log:
        "logs/demo_dataset.log",
    benchmark:
        "benchmarks/demo_dataset.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("demo_dataset")
    resources:
        **resources("demo_dataset"),
    params:
        spec=dict(sorted(config["demo"].items())),
        # The held-out videos take held-out looks, so the generator needs the split.
        split=dict(sorted(config["split"].items())),
    script:
        "../scripts/demo_dataset.py"


checkpoint manifest:
    input:
        manifest_inputs,
    output:
        manifest="results/manifest.tsv",
        rejected="results/manifest_rejected.tsv",
        plan="results/mixtures/plan.tsv",
    log:
        "logs/manifest.log",
    benchmark:
        "benchmarks/manifest.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("manifest")
    resources:
        **resources("manifest"),
    params:
        root=DATASET_ROOT,
        instruments=config["dataset"]["instruments"],
        extensions=config["dataset"]["extensions"],
        on_bad_input=config["dataset"]["on_bad_input"],
        max_seconds=config["audio"]["max_seconds"],
        split=dict(sorted(config["split"].items())),
        mixtures=dict(sorted(config["mixtures"].items())),
        frame_fps=config["frames"]["fps"],
    script:
        "../scripts/manifest.py"


rule dataset_overview:
    input:
        manifest="results/manifest.tsv",
        frames=lambda w: stage().all_frames(),
    output:
        summary=report(
            "results/dataset/summary.tsv",
            caption="../report/dataset_summary.rst",
            category="Dataset",
        ),
        plot=report(
            "results/dataset/split_counts.png",
            caption="../report/split_counts.rst",
            category="Dataset",
        ),
        sheet=report(
            "results/dataset/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Dataset",
        ),
    log:
        "logs/dataset_overview.log",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("dataset_overview")
    resources:
        **resources("dataset_overview"),
    params:
        per_label=8,
    script:
        "../scripts/dataset_overview.py"


# dataset.layout: urmp (avsep/urmp.py): the URMP root as duets with stems, all of them test.


rule urmp_dataset:
    input:
        layout.urmp_inputs(config),
    output:
        root=directory(layout.URMP_ROOT),
        pieces=layout.URMP_PIECES,
    log:
        "logs/urmp_dataset.log",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("urmp_dataset")
    resources:
        **resources("urmp_dataset"),
    params:
        root=config["dataset"]["root"],
        # The instruments of the models used: pieces of others are skipped.
        known=run_instruments(TRANSFER_RUN) if TRANSFER_RUN else None,
        on_bad_input=config["dataset"]["on_bad_input"],
    script:
        "../scripts/urmp_dataset.py"
