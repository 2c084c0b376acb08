# Stage 4 and the MIML half of stage 5: bags of bases with weak labels, the deep MIML
# network, and the key bases it ties to each instrument.


rule miml_data:
    input:
        manifest=MANIFEST,
        train=lambda w: stage().miml_bases("train"),
        val=lambda w: stage().miml_bases("val"),
        vision=lambda w: stage().miml_vision_labels(),
    output:
        train="results/miml/train.h5",
        val="results/miml/val.h5",
        labels=report(
            "results/miml/weak_labels.tsv",
            caption="../report/miml_weak_labels.rst",
            category="MIML",
        ),
    log:
        "logs/miml_data.log",
    benchmark:
        "benchmarks/miml_data.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("miml_data")
    resources:
        **resources("miml_data"),
    params:
        # A new cache format reruns the rule (older caches are refused when read).
        format_version=FORMAT_VERSION,
        labels=config["miml"]["labels"],
        train_on=config["miml"]["train_on"],
        solo_excluded=config["miml"]["solo_excluded"],
        expect=dict(stft=STFT_PARAMS, nmf=NMF_PARAMS),
        videos=lambda wildcards: stage().video_facts(
            stage().miml_videos("train") + stage().miml_videos("val")
        ),
    script:
        "../scripts/miml_data.py"


rule train_miml:
    input:
        train="results/miml/train.h5",
        val="results/miml/val.h5",
    output:
        model="results/miml/model.pt",
        metrics=report(
            "results/miml/metrics.tsv",
            caption="../report/miml_metrics.rst",
            category="MIML",
        ),
        curves=report(
            "results/miml/curves.png",
            caption="../report/miml_curves.rst",
            category="MIML",
        ),
    log:
        "logs/train_miml.log",
    benchmark:
        "benchmarks/train_miml.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("train_miml")
    resources:
        **resources("train_miml"),
    params:
        miml=dict(sorted(config["miml"].items())),
        checkpoint="results/miml/resume/checkpoint.pt",
        device=device("train_miml"),
    script:
        "../scripts/train_miml.py"


rule select_dictionary:
    input:
        model="results/miml/model.pt",
        train="results/miml/train.h5",
        manifest=MANIFEST,
        # The purity of the selection is measured on the training duets' true stems.
        duet_bases=lambda w: [f"results/bases/{v}.h5" for v in stage().purity_duets()],
        stems=lambda w: [
            f for stems in stage().purity_duets().values() for f in stems.values()
        ],
    output:
        dictionary="results/dictionary/miml.h5",
        selection=report(
            "results/miml/selection.tsv",
            caption="../report/miml_selection.rst",
            category="MIML",
        ),
        maps=report(
            "results/miml/relation_maps.png",
            caption="../report/miml_relation_maps.rst",
            category="MIML",
        ),
        purity="results/miml/purity.tsv",
        purity_plot=report(
            "results/miml/purity.png",
            caption="../report/miml_purity.rst",
            category="MIML",
        ),
    log:
        "logs/select_dictionary.log",
    benchmark:
        "benchmarks/select_dictionary.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("select_dictionary")
    resources:
        **resources("select_dictionary"),
    params:
        # A new cache format reruns the rule (older caches are refused when read).
        format_version=FORMAT_VERSION,
        dictionary=dict(sorted(config["dictionary"].items())),
        margin=config["miml"]["select_margin"],
        threshold=config["miml"]["threshold"],
        stems=lambda w: stage().purity_duets(),
        stft=STFT_PARAMS,
        nmf=NMF_PARAMS,
        device=device("select_dictionary"),
    script:
        "../scripts/select_dictionary.py"


rule miml:
    input:
        "results/dictionary/miml.h5",
