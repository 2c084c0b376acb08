# avsep: separate and localize the instruments in music videos.
# Stages live in rules/*.smk; helpers in rules/common.smk. See README.md.

import os
import sys

from snakemake.utils import min_version

min_version("9.0")

# The avsep package lives beside this file: importable here and in every job, whether the
# environment is .venv, a conda env or a cluster node's.
sys.path.insert(0, workflow.basedir)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p
    )
)


# Snakemake's scheduler otherwise starts a new re-evaluation timer chain on every pass while
# jobs wait for cores, and on the demo spent half a core on them (avsep/scheduler.py).
from avsep.scheduler import coalesce_reevaluations

coalesce_reevaluations()


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


# An experiment in its own folder (config/multisource.yaml): every output path below is
# relative to it.
if config.get("workdir"):

    workdir: config["workdir"]


include: "rules/common.smk"


wildcard_constraints:
    video_id=r"[^/]+",
    mix_id=r"mix[0-9]+",
    item=r"[^/]+",


include: "rules/fetch.smk"
include: "rules/dataset.smk"
include: "rules/extract.smk"
include: "rules/mixtures.smk"
include: "rules/vision.smk"
include: "rules/bases.smk"
include: "rules/dictionary.smk"
include: "rules/miml.smk"
include: "rules/deep.smk"
include: "rules/separation.smk"
include: "rules/evaluation.smk"
include: "rules/probe.smk"
include: "rules/localization.smk"
include: "rules/transfer.smk"
include: "rules/report.smk"


report: "report/workflow.rst"


localrules:
    all,
    extract,
    mixtures,
    bases,
    separate,
    evaluate,
    miml,
    vision,
    localize,


rule all:
    default_target: True
    input:
        "results/manifest.tsv",
        "results/manifest_rejected.tsv",
        "results/dataset/summary.tsv",
        lambda w: stage().extracted(),
        lambda w: stage().all_mixtures(),
        lambda w: stage().all_duet_separations(),
        "results/eval/summary.md",
        "results/eval/vision_summary.tsv",
        # The probes judge test solos and mixtures (URMP has neither: its duets' tracks are
        # named by the probe in their evaluation).
        lambda w: ["results/probe/accuracy.tsv"] if stage().probe_items() else [],
        "results/report/runtimes.tsv",
        # The purity of the MIML dictionaries, and the multi-source experiment's table.
        ["results/miml/purity.tsv"] if layout.uses_miml(config) else [],
        ["results/eval/multisource.md"] if config["miml"]["solo_excluded"] else [],
        ["results/localization/summary.md"] if config["localization"]["enabled"] else [],
