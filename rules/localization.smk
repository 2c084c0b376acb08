# Localization: where each instrument is. Maps per mixture and duet (whole, center, cam, av),
# scored against the instruments' boxes with cIoU, AUC and NSA (avsep/localization.py).
# Each rule's params are the localization keys it reads, so a scoring key (max_fraction,
# annotations) reruns only the scores, and a map key only the maps and the scores.

LOCALIZATION = config["localization"]
LOCALIZATION_TRAINING = {
    k: LOCALIZATION[k]
    for k in (
        "audio_seconds",
        "frames_per_video",
        "epochs",
        "steps_per_epoch",
        "batch_size",
        "lr",
        "weight_decay",
        "seed",
    )
}
LOCALIZATION_MAPS = {
    **{k: LOCALIZATION[k] for k in ("methods", "center_sigma")},
    "separator": localization_separator(config),
}
LOCALIZATION_SCORING = {
    k: LOCALIZATION[k] for k in ("methods", "max_fraction", "annotations", "seed")
}


rule train_localization:
    input:
        unpack(lambda w: stage().localization_training_inputs(VISION_MODEL, MANIFEST)),
    output:
        model=layout.LOCALIZATION_MODEL,
        metrics="results/localization/av/metrics.tsv",
    log:
        "logs/train_localization.log",
    benchmark:
        "benchmarks/train_localization.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("train_localization")
    resources:
        **resources("train_localization"),
    params:
        localization=LOCALIZATION_TRAINING,
        frames_fps=config["frames"]["fps"],
        sample_rate=config["audio"]["sample_rate"],
        device=device("train_localization"),
    script:
        "../scripts/train_localization.py"


rule localization_maps:
    input:
        unpack(
            lambda w: stage().localization_map_inputs(w.item, VISION_MODEL, MANIFEST)
        ),
    output:
        [f"results/localization/{m}/{{item}}.h5" for m in LOCALIZATION["methods"]],
    log:
        "logs/localization_maps/{item}.log",
    benchmark:
        "benchmarks/localization_maps/{item}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("localization_maps")
    resources:
        **resources("localization_maps"),
    params:
        localization=LOCALIZATION_MAPS,
        two_players=lambda w: stage().two_players(w.item),
        max_frames=config["vision"]["max_frames"],
        frames_fps=config["frames"]["fps"],
        device=device("localization_maps"),
    script:
        "../scripts/localization_maps.py"


rule evaluate_localization:
    input:
        unpack(lambda w: stage().localization_eval_inputs(MANIFEST)),
    output:
        rows="results/localization/scores.tsv",
        summary="results/localization/summary.tsv",
        markdown=report(
            "results/localization/summary.md",
            caption="../report/localization.rst",
            category="Localization",
        ),
        plot=report(
            "results/localization/success.png",
            caption="../report/localization.rst",
            category="Localization",
        ),
    log:
        "logs/evaluate_localization.log",
    benchmark:
        "benchmarks/evaluate_localization.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("evaluate_localization")
    resources:
        **resources("evaluate_localization"),
    params:
        localization=LOCALIZATION_SCORING,
        methods=LOCALIZATION["methods"],
        frames_fps=config["frames"]["fps"],
    script:
        "../scripts/evaluate_localization.py"


rule localize:
    input:
        "results/localization/summary.md",
