# Stage 2: the instruments on screen and their positions. Method "halves": a frame
# classifier on the left and right halves, with the seed's recursive split; method
# "detector": a Faster R-CNN, its boxes pooled per video.


rule train_vision:
    input:
        manifest=MANIFEST,
        frames=lambda w: stage().vision_training_frames(),
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
    threads: jobs.threads("train_vision")
    resources:
        **resources("train_vision"),
    params:
        vision=VISION_TRAIN_PARAMS,
        regions=vision_regions,
        frames_fps=config["frames"]["fps"],
        videos=lambda wildcards: solo_facts("train", "val"),
        device=device("train_vision"),
    script:
        "../scripts/train_vision.py"


rule vision_labels:
    input:
        frames=lambda w: stage().vision_item_frames(w.item),
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
    threads: jobs.threads("vision_labels")
    resources:
        **resources("vision_labels"),
    params:
        vision=dict(sorted(config["vision"].items())),
        two_players=lambda w: stage().two_players(w.item),
        frames_fps=config["frames"]["fps"],
        device=device("vision_labels"),
    script:
        "../scripts/vision_labels.py"


# separation.labels: audio+vision or folder+audio+vision (the default): what the MIML network
# hears in a test mixture or duet; the two instruments it ranks first, which vision then
# places left and right.
rule audio_tags:
    input:
        unpack(lambda w: stage().audio_tags_inputs(w.item)),
    output:
        "results/audio_tags/{item}.json",
    log:
        "logs/audio_tags/{item}.log",
    benchmark:
        "benchmarks/audio_tags/{item}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("audio_tags")
    resources:
        **resources("audio_tags"),
    params:
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=device("audio_tags"),
    script:
        "../scripts/audio_tags.py"


# miml.labels: vision: the training solos' labels, each from a vision model that did not
# train on it (k-fold cross-fitting); the other MIML videos take vision_labels' records.
ruleorder: vision_crossfit > vision_labels


rule vision_crossfit:
    input:
        manifest=MANIFEST,
        frames=lambda w: stage().vision_training_frames(),
        annotations=vision_annotations,
    output:
        layout.CROSSFIT_LABELS,
    log:
        "logs/vision_crossfit.log",
    benchmark:
        "benchmarks/vision_crossfit.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("vision_crossfit")
    resources:
        **resources("vision_crossfit"),
    params:
        vision=dict(sorted(config["vision"].items())),
        regions=vision_regions,
        folds=config["miml"]["vision_folds"],
        frames_fps=config["frames"]["fps"],
        videos=lambda w: stage().crossfit_solos(),
        solos=lambda wildcards: solo_facts("train", "val"),
        device=device("vision_crossfit"),
    script:
        "../scripts/vision_crossfit.py"


rule vision:
    input:
        lambda w: stage().all_vision_labels(),
