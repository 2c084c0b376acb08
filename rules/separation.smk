# Stage 6: separation of every test mixture and real duet. Guided NMF with a dictionary
# ("<dictionary>_nmf", the visible instruments from separation.labels; "<dictionary>_nmf_truth"
# with the true ones, to measure what the labels' errors cost; "<dictionary>_nmf_vision" with
# vision's own, the paper's setting), and the ideal ratio mask from the true stems ("irm",
# mixtures only).


rule separate_nmf:
    input:
        unpack(lambda w: stage().separation_inputs(w.item, w.get("via"), MANIFEST)),
        dictionary="results/dictionary/{dictionary}.h5",
    output:
        directory("results/separated/{dictionary}_nmf{via}/{item}"),
    log:
        "logs/separate_nmf/{dictionary}{via}/{item}.log",
    benchmark:
        "benchmarks/separate_nmf/{dictionary}{via}_{item}.tsv"
    wildcard_constraints:
        dictionary="oracle|miml",
        via="|_truth|_vision",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("separate_nmf")
    resources:
        **resources("separate_nmf"),
    params:
        visible=lambda w: stage().visible_instruments(w.item),
        known_labels=lambda w: stage().folder_labels(w.item),
        stft=STFT_PARAMS,
        chunk_seconds=config["nmf"]["chunk_seconds"],
        loss=config["nmf"]["loss"],
        beta=config["nmf"]["beta"],
        separation=lambda w: layout.separation_settings(config, w.get("via")),
        device=device("separate_nmf"),
    script:
        "../scripts/separate_nmf.py"


rule separate_irm:
    input:
        "results/mixtures/{mix_id}",
    output:
        directory("results/separated/irm/{mix_id}"),
    log:
        "logs/separate_irm/{mix_id}.log",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("separate_irm")
    resources:
        **resources("separate_irm"),
    params:
        stft=STFT_PARAMS,
        mask_power=config["separation"]["mask_power"],
    script:
        "../scripts/separate_irm.py"


rule separate:
    input:
        lambda w: stage().all_duet_separations(),
        lambda w: stage().all_mixture_separations(),


# The deep separator conditions on what is seen, so it always reads the vision record (its
# sides); its names come from separation.labels like the NMF methods' (by default a test
# mixture's from the audio tags, a duet's from its folder; placed by vision).
rule separate_deep:
    input:
        unpack(lambda w: stage().deep_separation_inputs(w.item, MANIFEST)),
    output:
        directory("results/separated/deep/{item}"),
    log:
        "logs/separate_deep/{item}.log",
    benchmark:
        "benchmarks/separate_deep/{item}.tsv"
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("separate_deep")
    resources:
        **resources("separate_deep"),
    params:
        visible=lambda w: stage().visible_instruments(w.item),
        known_labels=lambda w: stage().folder_labels(w.item),
        labels=config["separation"]["labels"],
        stft_native={k: v for k, v in STFT_PARAMS.items() if k != "sample_rate"},
        frames_fps=config["frames"]["fps"],
        device=device("separate_deep"),
    script:
        "../scripts/separate_deep.py"
