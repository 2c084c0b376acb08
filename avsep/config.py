"""Configuration checks run before any job starts.

:func:`schema_problems` checks a config against ``config/schema.yaml`` and words every
violation as the key, the value given and what is allowed, instead of jsonschema's dump of
the schema. :func:`consistency_problems` checks what a schema cannot express: relations
between keys and between the config and the dataset on disk (instruments without solo
videos, more mixtures than the test split can pair).
"""

from __future__ import annotations

import difflib
import itertools
from pathlib import Path
from typing import Any, Mapping, Sequence

import jsonschema

from avsep.dataset import held_out_count, video_folders
from avsep.errors import InputError
from avsep.jobs import gpu_problems

__all__ = [
    "ConfigError",
    "schema_problems",
    "consistency_problems",
    "allowed_values",
    "solo_video_counts",
    "possible_pairs",
]


class ConfigError(InputError, ValueError):
    """The configuration is invalid; the message lists every problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the configuration (see config/README.md):\n{lines}"
        )


def _key(path: Sequence[Any]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# (article, noun) of each JSON type; list items are named without the article.
_TYPE_WORDS = {
    "integer": ("an", "integer"),
    "number": ("a", "number"),
    "string": ("a", "string"),
    "boolean": ("", "true or false"),
    "array": ("a", "list"),
    "object": ("a", "mapping of keys"),
}


def allowed_values(schema: Mapping, *, article: bool = True) -> str:
    """What a schema node accepts, in words: ``"an integer >= 1 and <= 1000"``."""
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    named = [_TYPE_WORDS.get(t, ("", t)) for t in types] or [("a", "value")]
    words = " or ".join(f"{a} {noun}" if article and a else noun for a, noun in named)
    bounds = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if key in schema:
            bounds.append(f"{sign} {_number(schema[key])}")
    if "multipleOf" in schema:
        bounds.append(f"a multiple of {_number(schema['multipleOf'])}")
    if bounds:
        words += " " + " and ".join(bounds)
    if "pattern" in schema:
        words += f" matching {schema['pattern']}"
    if "items" in schema and isinstance(schema["items"], Mapping):
        words += " of " + allowed_values(schema["items"], article=False)
    if schema.get("minItems"):
        words += f", at least {schema['minItems']} item(s)"
    if schema.get("uniqueItems"):
        words += ", without repeats"
    return words


def _describe(error: jsonschema.ValidationError) -> list[str]:
    path = list(error.absolute_path)
    value = error.instance
    if error.validator == "additionalProperties":
        known = sorted(error.schema.get("properties", {}))
        out = []
        for extra in sorted(set(value) - set(known)):
            guess = difflib.get_close_matches(str(extra), known, n=1)
            hint = f"; did you mean {_key([*path, guess[0]])}?" if guess else ""
            out.append(
                f"{_key([*path, extra])}: unknown key; {_key(path)} takes "
                f"{', '.join(known)}{hint}"
            )
        return out
    if error.validator == "required":
        return [f"{_key(path)}: {error.message}"]
    return [f"{_key(path)}: {value!r} is not allowed; allowed: {allowed_values(error.schema)}"]


def schema_problems(config: Mapping, schema: Mapping) -> list[str]:
    """Every way ``config`` breaks ``schema``, one line each, naming key, value and what is
    allowed. Problems are sorted by key, so the same config always gives the same text."""
    validator = jsonschema.Draft202012Validator(schema)
    problems: list[str] = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        # Errors of enum/type inside array items are reported at the item's key.
        if error.validator in ("anyOf", "oneOf", "allOf") and error.context:
            for sub in error.context:
                problems += _describe(sub)
        else:
            problems += _describe(error)
    return problems


def solo_video_counts(root: str | Path, extensions: Sequence[str]) -> dict[str, int]:
    """Video files per solo instrument folder of a MUSIC-layout root (no probing)."""
    return {name: len(files) for name, files in video_folders(root, "solo", extensions).items()}


def possible_pairs(counts: Mapping[str, int], test_fraction: float) -> int:
    """Distinct (video, video) pairs of different instruments the test split will hold,
    with ``counts`` solo videos per instrument split as :func:`avsep.dataset.assign_splits`
    does."""
    tests = {k: held_out_count(n, test_fraction) for k, n in counts.items() if n > 0}
    return sum(tests[a] * tests[b] for a, b in itertools.combinations(sorted(tests), 2))


def miml_problems(config: Mapping) -> list[str]:
    """MIML keys that do not fit the rest: instruments left without solo videos
    (``miml.solo_excluded``) can only be learned from multi-source videos, and have no
    oracle dictionary."""
    miml = config["miml"]
    excluded = list(miml.get("solo_excluded", []))
    if not excluded:
        return []
    problems = []
    if miml.get("train_on", "all") == "solo":
        problems.append(f"miml.solo_excluded: {', '.join(excluded)} can only be learned from multi-source videos, "
                        "and miml.train_on: solo gives MIML none; allowed: train_on multi or all")
    methods = list(config.get("evaluation", {}).get("methods", []))
    oracle = [m for m in methods if m.startswith("oracle_nmf")]
    if oracle:
        problems.append(f"evaluation.methods: {', '.join(oracle)} needs solo videos of every instrument, and "
                        f"miml.solo_excluded leaves none of {', '.join(excluded)}; allowed: drop it from "
                        "evaluation.methods (config/multisource.yaml does, and compares with a normal run through "
                        "evaluation.compare_with)")
    return problems


def vision_problems(vision: Mapping) -> list[str]:
    """Vision keys that do not fit together (the halves classifier's init and training)."""
    problems = []
    if vision["method"] != "halves":
        return problems
    init, backbone, weights = vision["init"], vision["backbone"], vision["weights"]
    if init == "classifier" and not weights:
        problems.append("vision.init: classifier needs vision.weights, the finished classifier's state dict")
    if init == "classifier" and backbone == "efficientnet_lite0":
        problems.append("vision.init: classifier reads a torchvision classifier; allowed backbones: "
                        "resnet18, mobilenet_v3_small, densenet161")
    if init == "pretrained" and not weights and backbone != "efficientnet_lite0":
        problems.append(
            f"vision.backbone: {backbone} has no packaged ImageNet weights; fetch them with "
            f"`make weights NAMES={backbone}` and set vision.weights: resources/weights/{backbone}.pth, "
            "or use vision.backbone: efficientnet_lite0, or vision.init: scratch"
        )
    if init == "scratch" and vision["train"] == "head":
        problems.append("vision.train: head trains a head on pretrained features; with vision.init: scratch "
                        "use vision.train: finetune (every layer is trained)")
    if vision.get("regions", "auto") == "boxes" and not region_head_possible(vision):
        problems.append("vision.regions: boxes trains the linear head of a frozen efficientnet backbone on box "
                        "features: it needs vision.init: pretrained, vision.train: head, vision.head: linear and "
                        f"an efficientnet backbone (got init {init}, train {vision['train']}, head {vision['head']}, "
                        f"backbone {backbone}); or use vision.regions: auto or frame")
    return problems


#: ``localization.separator: auto`` takes the first of these that is evaluated.
AUTO_SEPARATORS = ("miml_nmf", "oracle_nmf", "deep", "irm")


def localization_separator(config: Mapping) -> str:
    """The method whose tracks the ``av`` maps embed (``localization.separator``; ``auto``:
    the first of :data:`AUTO_SEPARATORS` in ``evaluation.methods``)."""
    chosen = config["localization"]["separator"]
    if chosen != "auto":
        return chosen
    evaluated = config["evaluation"]["methods"]
    return next((m for m in AUTO_SEPARATORS if m in evaluated), "")


def localization_problems(config: Mapping) -> list[str]:
    """Localization methods that the vision settings or the separated methods cannot give."""
    loc = config.get("localization", {})
    if not loc.get("enabled", True):
        return []
    vision, methods = config["vision"], set(loc.get("methods", []))
    problems = []
    learned = sorted(methods & {"cam", "av"})
    if learned and (vision["method"] != "halves" or not vision["backbone"].startswith("efficientnet")):
        problems.append(f"localization.methods: {', '.join(learned)} read the feature map of the halves "
                        f"classifier's efficientnet backbone (got vision.method {vision['method']}, backbone "
                        f"{vision['backbone']}); use localization.methods: [whole, center] or disable localization")
    if "cam" in methods and vision["head"] != "linear":
        problems.append("localization.methods: cam needs vision.head: linear (avsep computes CAM, not Grad-CAM)")
    separator = loc.get("separator", "auto")
    evaluated = list(config.get("evaluation", {}).get("methods", []))
    if separator == "auto" and "av" in methods and not set(evaluated) & set(AUTO_SEPARATORS):
        problems.append(f"localization.methods: av embeds separated tracks, and evaluation.methods "
                        f"({', '.join(evaluated)}) separates nothing; add one of {', '.join(AUTO_SEPARATORS)}")
    if separator != "auto" and "av" in methods and evaluated and separator not in evaluated:
        problems.append(f"localization.separator: {separator!r} is not among evaluation.methods "
                        f"({', '.join(evaluated)}); the av maps embed its separated tracks")
    return problems


def region_head_possible(vision: Mapping) -> bool:
    """Whether these vision settings can train the region classifier
    (:mod:`avsep.vision.regions`): the halves method with a frozen efficientnet and a linear head."""
    return (vision["method"] == "halves" and vision["init"] == "pretrained" and vision["train"] == "head"
            and vision["head"] == "linear" and vision["backbone"].startswith("efficientnet"))


def consistency_problems(config: Mapping) -> list[str]:
    """Problems between keys, and between the config and the dataset it names.

    Expects a config already checked against the schema, with its defaults filled in.
    """
    problems: list[str] = []
    audio = config["audio"]
    if audio["n_fft"] < audio["hop_length"]:
        problems.append(
            f"audio.n_fft: {audio['n_fft']} is smaller than audio.hop_length "
            f"({audio['hop_length']}); allowed: n_fft >= hop_length, or frames would skip samples"
        )
    chunk = config["nmf"]["chunk_seconds"] * audio["sample_rate"] / audio["hop_length"]
    if chunk < 2:
        problems.append(
            f"nmf.chunk_seconds: {config['nmf']['chunk_seconds']} s is under two STFT frames "
            f"at audio.hop_length {audio['hop_length']} and {audio['sample_rate']} Hz"
        )
    max_seconds = config["audio"].get("max_seconds", 0)
    if max_seconds and max_seconds < config["nmf"]["chunk_seconds"]:
        problems.append(
            f"audio.max_seconds: {max_seconds} is shorter than one chunk "
            f"(nmf.chunk_seconds {config['nmf']['chunk_seconds']}); no video could pass"
        )
    problems += vision_problems(config["vision"])
    problems += localization_problems(config)
    if "gpu" in config:
        problems += gpu_problems(config)
    evaluation = config.get("evaluation", {})
    reference, methods = evaluation.get("reference", "oracle_nmf"), list(evaluation.get("methods", []))
    if methods and reference not in methods:
        problems.append(f"evaluation.reference: {reference!r} is not among evaluation.methods ({', '.join(methods)}); "
                        "the paired differences compare every method with it")
    problems += miml_problems(config)
    dataset = config["dataset"]
    wanted = list(dataset["instruments"])
    fetching = bool(dataset.get("fetch", {}).get("lists"))
    if fetching and not dataset["root"]:
        problems.append("dataset.fetch.lists: the fetched videos need a dataset.root to go to (the demo "
                        "dataset is generated, not fetched)")
    if fetching and dataset.get("layout", "music") != "music":
        problems.append(f"dataset.fetch.lists: the fetch stage writes the MUSIC layout; dataset.layout is "
                        f"{dataset['layout']}")
    run = config.get("transfer", {}).get("run", "")
    if run and not (Path(run) / "results" / "manifest.tsv").is_file():
        problems.append(f"transfer.run: {run!r} is not the folder of a finished run (no results/manifest.tsv "
                        "there); allowed: the folder a run's results/ is in")
    if dataset.get("layout", "music") == "urmp":
        if not dataset["root"] or not Path(dataset["root"]).is_dir():
            problems.append(f"dataset.root: {dataset['root']!r} is not a folder; dataset.layout: urmp reads the URMP "
                            "root holding the piece folders (01_Jupiter_vn_vc/, ...)")
        if not run:
            problems.append("dataset.layout: urmp has no solo videos to train on; set transfer.run to a finished "
                            "run (MUSIC, or the demo) whose models are evaluated here")
        if config["mixtures"]["count"]:
            problems.append(f"mixtures.count: {config['mixtures']['count']} test mixtures need solo videos, which "
                            "URMP has none of; set mixtures.count: 0 (its duets are scored against their stems)")
        return problems
    if fetching:
        # A root being fetched into: what its videos allow is checked when the manifest is
        # made, after the fetch, so that `snakemake fetch` is never refused for it.
        return problems
    if dataset["root"]:
        root = Path(dataset["root"])
        if not (root / "solo").is_dir():
            problems.append(
                f"dataset.root: {str(root)!r} has no solo/ folder; allowed: a MUSIC-layout "
                "root holding solo/<instrument>/<video> (empty for the demo dataset)"
            )
            return problems
        counts = solo_video_counts(root, dataset["extensions"])
        where = f"{root / 'solo'}"
    else:
        demo = config["demo"]
        counts = {name: demo["videos_per_instrument"] for name in demo["instruments"]}
        where = "the demo dataset (demo.instruments)"
    for name in config["miml"].get("solo_excluded", []):
        if counts.get(name, 0) == 0 or (wanted and name not in wanted):
            problems.append(
                f"miml.solo_excluded: {name!r} is not an instrument of {where}; allowed: "
                f"{', '.join(k for k, n in counts.items() if n and (not wanted or k in wanted)) or 'none found'}"
            )
    for name in wanted:
        if counts.get(name, 0) == 0:
            problems.append(
                f"dataset.instruments: {name!r} has no solo videos in {where}; allowed: "
                f"{', '.join(k for k, n in counts.items() if n) or 'none found'}"
            )
    used = {k: n for k, n in counts.items() if (not wanted or k in wanted)}
    test_fraction = config["split"]["test_fraction"]
    pairs = possible_pairs(used, test_fraction)
    count = config["mixtures"]["count"]
    if count > pairs:
        tests = {k: held_out_count(n, test_fraction) for k, n in used.items() if n}
        problems.append(
            f"mixtures.count: {count} is more than the {pairs} distinct pairs of different "
            f"instruments the test split can hold (test videos per instrument: "
            f"{', '.join(f'{k} {n}' for k, n in tests.items()) or 'none'}); allowed: at most "
            f"{pairs}, or raise split.test_fraction or add videos"
        )
    return problems
