# Stage 0, opt-in: MUSIC-style JSON lists fetched with yt-dlp into dataset.root in the MUSIC
# layout (avsep/fetch.py). Only when dataset.fetch.lists is set; the videos are jobs of
# their own, as many at a time as the `downloads` resource allows (dataset.fetch.downloads
# unless --resources downloads=N says otherwise). They are local rules: on a cluster the
# submitting node is the one that reaches the internet.

if FETCH_PLAN is not None and "downloads" not in workflow.global_resources:
    workflow.register_resource("downloads", config["dataset"]["fetch"]["downloads"])


localrules:
    fetch_video,
    fetch_report,
    fetch,


rule fetch_video:
    output:
        "results/fetch/videos/{video_id}.tsv",
    log:
        "logs/fetch/{video_id}.log",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("fetch_video")
    resources:
        **resources("fetch_video"),
        downloads=1,
    params:
        item=lambda w: fetch_item(w.video_id),
        root=DATASET_ROOT,
        fetch=FETCH_OPTIONS,
    script:
        "../scripts/fetch_video.py"


rule fetch_report:
    input:
        lambda w: [
            f"results/fetch/videos/{item.video_id}.tsv"
            for item in (FETCH_PLAN.items if FETCH_PLAN else [])
        ],
    output:
        report="results/fetch/report.tsv",
        summary="results/fetch/summary.tsv",
        leaks="results/fetch/leaks.tsv",
    log:
        "logs/fetch_report.log",
    conda:
        "../envs/avsep.yaml"
    threads: jobs.threads("fetch_report")
    resources:
        **resources("fetch_report"),
    params:
        leaks=lambda w: FETCH_PLAN.leaks.to_dict("records") if FETCH_PLAN else [],
    script:
        "../scripts/fetch_report.py"


rule fetch:
    input:
        lambda w: fetch_plan() and "results/fetch/report.tsv",
