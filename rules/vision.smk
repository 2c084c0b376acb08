# Stage 3: the instruments on screen and their positions. Method "halves": a frame
# classifier on the left and right halves, with the seed's recursive split; method
# "detector": a Faster R-CNN, its boxes pooled per video.


rule train_vision:
    input:
        manifest=MANIFEST,
        frames=vision_training_frames,
        annotations=vision_annotations,
    output:
        model=VISION_MODEL,
        metrics=report(
            "results/vision/model/metrics.tsv",
            caption="../report/vision_metrics.rst",
            category="Vision",
        ),
        confusion=report(
            "results/vision/model/confusion.png",
            caption="../report/vision_confusion.rst",
            category="Vision",
        ),
    log:
        "logs/train_vision.log",
    benchmark:
        "benchmarks/train_vision.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    params:
        vision=VISION_TRAIN_PARAMS,
        regions=vision_regions,
        frames_fps=config["frames"]["fps"],
        videos=lambda wildcards: solo_facts("train", "val"),
        device=config["device"],
    script:
        "../scripts/train_vision.py"


rule vision_labels:
    input:
        frames=vision_item_frames,
        model=VISION_MODEL,
        manifest=MANIFEST,
    output:
        "results/vision/{item}.json",
    log:
        "logs/vision_labels/{item}.log",
    benchmark:
        "benchmarks/vision_labels/{item}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        vision=dict(sorted(config["vision"].items())),
        two_players=lambda wildcards: is_mixture(wildcards.item)
        or wildcards.item in duet_videos(),
        frames_fps=config["frames"]["fps"],
        device=config["device"],
    script:
        "../scripts/vision_labels.py"


rule vision:
    input:
        all_vision_labels,
