"""Which files each stage of the workflow reads, as plain functions of the config, the
manifest and the mixture plan.

``rules/common.smk`` only reads the manifest checkpoint and hands its tables to
:class:`StageInputs`; everything that decides which videos, mixtures, duets and models a job
needs lives here, where it is tested without Snakemake (``tests/test_inputs.py``). The paths
are the workflow's own, relative to its working directory; ARCHITECTURE.md lists them by
stage.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from avsep.config import localization_separator
from avsep.dataset import SPLITS_FILE, dataset_video_files, stems_folder
from avsep.vision.labels import AUDIO_LABELS, FOLDER_LABELS, VISION_LABELS

#: Where the demo dataset is generated when ``dataset.root`` is empty.
DEMO_ROOT = "results/demo/dataset"
#: The MUSIC-layout view of a URMP root (duets, their stems, and a test split), and the
#: table of every URMP piece, used or skipped with the reason.
URMP_ROOT = "results/urmp/dataset"
URMP_PIECES = "results/urmp/pieces.tsv"
#: The fetch stage's table of every listed video (``dataset.fetch.lists``).
FETCH_REPORT = "results/fetch/report.tsv"
MIML_MODEL = "results/miml/model.pt"
#: The deep separator (method ``deep``) and its training clips.
DEEP_MODEL = "results/deep/model.pt"
#: The audio-visual head of the av localization maps.
LOCALIZATION_MODEL = "results/localization/av/model.pt"
DEEP_CLIPS = {"train": "results/deep/train.h5", "val": "results/deep/val.h5"}
#: The cross-fitted vision labels of the training solos (``miml.labels: vision``).
CROSSFIT_LABELS = "results/vision/crossfit.json"
#: The independent probe whose accuracy is ``audio_acc`` (the log-mel linear probe).
PROBE_MODEL = "results/probe/logmel_linear.pt"
#: Vision keys that only affect inference, not the trained model.
VISION_INFERENCE_KEYS = ("max_frames", "present_threshold", "abstain_margin")
TRAINING_SPLITS = ("train", "val")


def item_recording(item: str) -> str:
    """What a test mixture's or duet's jobs read as its sound: the mixture's folder, or the
    duet's extracted audio."""
    return f"results/mixtures/{item}" if is_mixture(item) else _audio(item)


def audio_tags_file(item: str) -> str:
    """What the MIML network hears in a test mixture or duet (rule ``audio_tags``)."""
    return f"results/audio_tags/{item}.json"


def dataset_root(config: Mapping) -> str:
    """The dataset the workflow reads: the user's ``dataset.root``, the generated demo, or
    the MUSIC-layout view of a URMP root (``dataset.layout: urmp``)."""
    if using_urmp(config):
        return URMP_ROOT
    return config["dataset"]["root"] or DEMO_ROOT


def using_urmp(config: Mapping) -> bool:
    return config["dataset"].get("layout", "music") == "urmp"


def using_demo(config: Mapping) -> bool:
    return not config["dataset"]["root"]


def is_mixture(item: str) -> bool:
    """A test mixture's id (``mix<N>``), as opposed to a duet video's."""
    return re.fullmatch(r"mix[0-9]+", item) is not None


def stft_params(config: Mapping) -> dict:
    """The STFT settings; ``audio.max_seconds`` is a limit on inputs, not an STFT parameter."""
    return {k: v for k, v in sorted(config["audio"].items()) if k != "max_seconds"}


def separated_methods(config: Mapping) -> list[str]:
    """The evaluated methods that separate (every one but ``mixture``)."""
    return [m for m in config["evaluation"]["methods"] if m != "mixture"]


def uses_miml(config: Mapping) -> bool:
    return any(m.startswith("miml_nmf") for m in separated_methods(config))


def duet_methods(config: Mapping) -> list[str]:
    """The methods that separate duets: those that need neither true stems (``irm``) nor
    true labels (the ``_truth`` methods compare with vision on scored mixtures)."""
    return [m for m in separated_methods(config) if m != "irm" and not m.endswith("_truth")]


def probe_features(config: Mapping) -> list[str]:
    """The probes' features; the MIML embedding only when a MIML method is evaluated, so that
    evaluation without one never needs the MIML network."""
    return [f for f in config["probe"]["features"] if f != "miml" or uses_miml(config)]


def probe_files(config: Mapping) -> list[str]:
    return [f"results/probe/{f}_{k}.pt" for f in probe_features(config) for k in config["probe"]["kinds"]]


def vision_model(config: Mapping) -> str:
    name = "classifier" if config["vision"]["method"] == "halves" else "detector"
    return f"results/vision/model/{name}.pt"


def vision_train_params(config: Mapping) -> dict:
    """The vision keys the trained model depends on."""
    return {k: v for k, v in sorted(config["vision"].items()) if k not in VISION_INFERENCE_KEYS}


def separation_settings(config: Mapping, via: str | None) -> dict:
    """The separation keys of a job; the ``_truth`` methods use the true labels, the
    ``_vision`` methods vision's own (whatever ``separation.labels`` says)."""
    settings = dict(sorted(config["separation"].items()))
    if via == "_truth":
        settings["labels"] = "truth"
    elif via == "_vision":
        settings["labels"] = "vision"
    return settings


def manifest_inputs(config: Mapping) -> list[str]:
    """The demo folder, or every video file of the user's dataset and its ``splits.tsv``, so
    that adding, removing or touching a video or the split file remakes the manifest."""
    if using_demo(config):
        return [DEMO_ROOT]
    if using_urmp(config):
        return [URMP_ROOT]
    # Fetched videos are read after the fetch stage's report, which lists them.
    fetched = [FETCH_REPORT] if config["dataset"]["fetch"]["lists"] else []
    root = Path(dataset_root(config))
    splits = [str(root / SPLITS_FILE)] if (root / SPLITS_FILE).is_file() else []
    return fetched + splits + [str(p) for p in dataset_video_files(root, config["dataset"]["extensions"])]


def urmp_inputs(config: Mapping) -> list[str]:
    """The videos and stems of a URMP root, so that changing one remakes its view."""
    root = Path(config["dataset"]["root"])
    if not root.is_dir():
        return []
    return sorted(str(p) for pattern in ("*/Vid_*", "*/AuSep_*.wav") for p in root.glob(pattern))


def _audio(video: str) -> str:
    return f"results/audio/{video}.wav"


def _frames(video: str) -> str:
    return f"results/frames/{video}.h5"


def _bases(video: str) -> str:
    return f"results/bases/{video}.h5"


@dataclasses.dataclass(frozen=True)
class StageInputs:
    """The inputs of every job, once the manifest checkpoint has written its two tables.

    Attributes:
        config: the validated config (schema defaults filled in).
        manifest: ``results/manifest.tsv`` as :func:`avsep.dataset.read_manifest` reads it.
        plan: ``results/mixtures/plan.tsv`` as :func:`avsep.mixtures.read_plan` reads it.
    """

    config: Mapping
    manifest: pd.DataFrame
    plan: pd.DataFrame

    # -- the manifest and the plan --------------------------------------------------------
    def _solo_rows(self, splits: Sequence[str]) -> pd.DataFrame:
        """The manifest rows of the solo videos of ``splits`` (all when none), in order: the
        one filter every stage's choice of videos goes through."""
        table = self.manifest[self.manifest["kind"] == "solo"]
        return table[table["split"].isin(splits)] if splits else table

    def solos(self, *splits: str) -> list[str]:
        """The solo videos of ``splits`` (all splits when none is given), in manifest order."""
        return list(self._solo_rows(splits)["video_id"])

    def solo_facts(self, *splits: str) -> dict[str, list[str]]:
        """What a job takes from the manifest, as params: each solo video of ``splits`` with
        its label and split, sorted by video id (so that only a real change reruns it)."""
        rows = self._solo_rows(splits).sort_values("video_id")
        return {v: [lab, s] for v, lab, s in zip(rows["video_id"], rows["labels"], rows["split"])}

    def instruments(self) -> list[str]:
        """Every instrument of the manifest's videos, sorted."""
        return sorted({lab for labels in self.manifest["labels"] for lab in str(labels).split(",")})

    def duets(self, *splits: str) -> list[str]:
        """The duet (multi-source) videos of ``splits`` (all when none), in manifest order."""
        table = self.manifest[self.manifest["kind"] == "duet"]
        return list((table[table["split"].isin(splits)] if splits else table)["video_id"])

    def test_duets(self) -> list[str]:
        """The duets that are separated and scored: the test split's (the others train MIML)."""
        return self.duets("test")

    def miml_videos(self, split: str) -> list[str]:
        """The videos of ``split`` whose bases give MIML its bags (``miml.train_on``): solo
        videos, but none of an instrument of ``miml.solo_excluded``, and multi-source ones."""
        train_on = self.config["miml"]["train_on"]
        solos = [] if train_on == "multi" else self._included_solos(split)
        return solos + ([] if train_on == "solo" else self.duets(split))

    def _included_solos(self, split: str) -> list[str]:
        """The solos of ``split``, but none of an instrument of ``miml.solo_excluded``."""
        rows = self._solo_rows([split])
        return list(rows.loc[~rows["labels"].isin(self.config["miml"]["solo_excluded"]), "video_id"])

    def video_facts(self, videos: Sequence[str]) -> dict[str, list[str]]:
        """Each of ``videos`` with its folder labels (comma-joined) and split, sorted by video
        id: a job's params, so that only a real change reruns it."""
        rows = self.manifest[self.manifest["video_id"].isin(videos)].sort_values("video_id")
        return {v: [lab, s] for v, lab, s in zip(rows["video_id"], rows["labels"], rows["split"])}

    def oracle_solos(self) -> list[str]:
        """The training solos whose bases the oracle dictionaries pool: none of an instrument
        of ``miml.solo_excluded``, which has no oracle dictionary."""
        return self._included_solos("train")

    def mixtures(self) -> list[str]:
        return list(self.plan["mix_id"])

    def _video_row(self, video_id: str) -> pd.Series | None:
        row = self.manifest[self.manifest["video_id"] == video_id]
        return None if row.empty else row.iloc[0]

    def video_path(self, video_id: str) -> str:
        row = self._video_row(video_id)
        if row is None:
            raise ValueError(f"video id {video_id!r} is not in the manifest")
        return row["path"]

    def plan_row(self, mix_id: str) -> dict:
        row = self.plan[self.plan["mix_id"] == mix_id]
        if row.empty:
            raise ValueError(f"mixture {mix_id!r} is not in the mixture plan")
        return row.iloc[0].to_dict()

    def video_labels(self, video_id: str) -> list[str]:
        """The instruments a video's folder names (one for a solo, two for a duet)."""
        row = self._video_row(video_id)
        if row is None:
            raise ValueError(f"{video_id!r} is neither a mixture nor a video of the manifest")
        return row["labels"].split(",")

    # -- stage 1: extraction; test mixtures -----------------------------------------------
    def extracted(self) -> list[str]:
        """Audio and frames of every video in the manifest."""
        ids = list(self.manifest["video_id"])
        return [_audio(v) for v in ids] + [_frames(v) for v in ids]

    def all_frames(self) -> list[str]:
        return [_frames(v) for v in self.manifest["video_id"]]

    def mixture_sources(self, mix_id: str) -> dict[str, str]:
        row = self.plan_row(mix_id)
        return {f"{side}_{what}": path(row[f"{side}_video"])
                for what, path in (("audio", _audio), ("frames", _frames)) for side in ("left", "right")}

    def all_mixtures(self) -> list[str]:
        return [f"results/mixtures/{m}" for m in self.mixtures()]

    # -- stage 2: recognition -------------------------------------------------------------
    def vision_training_frames(self) -> list[str]:
        return [_frames(v) for v in self.solos(*TRAINING_SPLITS)]

    def vision_box_files(self) -> list[str]:
        """``<dataset>/annotations/<video_id>.tsv`` of each train and val solo video."""
        root = dataset_root(self.config)
        return [f"{root}/annotations/{v}.tsv" for v in self.solos(*TRAINING_SPLITS)]

    def vision_regions(self, region_head_possible: bool) -> bool:
        """Whether train_vision trains the region classifier (``vision.regions``): always
        with ``boxes``, never with ``frame``, and with ``auto`` when the settings allow it
        (``region_head_possible``) and every train and val solo video has its boxes."""
        v = self.config["vision"]
        if v["regions"] == "frame":
            return False
        if v["regions"] == "boxes":
            return v["method"] == "halves"
        return region_head_possible and all(Path(f).is_file() for f in self.vision_box_files())

    def vision_annotations(self, regions: bool) -> list[str]:
        """The box annotations vision trains on: the detector's (method ``detector`` without
        ``vision.weights``) and the region classifier's (``regions``).

        Raises:
            ValueError: when some are missing, naming the first and what to do instead.
        """
        v = self.config["vision"]
        detector = v["method"] == "detector" and not v["weights"]
        if not detector and not regions:
            return []
        files = self.vision_box_files()
        missing = [f for f in files if not Path(f).is_file()]
        if missing:
            what = "vision.method: detector" if detector else "vision.regions: boxes"
            instead = ("give vision.weights, or use vision.method: halves" if detector
                       else "use vision.regions: frame or auto")
            raise ValueError(
                f"{what} trains on box annotations, and {len(missing)} of {len(files)} are "
                f"missing, e.g. {missing[0]}; {instead} (see config/README.md)"
            )
        return files

    def vision_item_frames(self, item: str) -> str:
        """A mixture's folder (its frames.h5 inside) or a duet video's frames."""
        return f"results/mixtures/{item}" if is_mixture(item) else _frames(item)

    def two_players(self, item: str) -> bool:
        return is_mixture(item) or item in self.duets()

    def all_vision_labels(self) -> list[str]:
        return [f"results/vision/{i}.json" for i in [*self.mixtures(), *self.test_duets()]]

    # -- stage 3: bases; stage 4 and 5: MIML and the dictionaries -------------------------
    def bases(self, *splits: str) -> list[str]:
        """The bases of the solo videos of ``splits``, split by split (test videos are only
        ever mixed, so the later stages read train and val)."""
        return [_bases(v) for s in splits for v in self.solos(s)]

    def miml_bases(self, split: str) -> list[str]:
        """The bases of the videos of ``split`` that MIML learns from (:meth:`miml_videos`)."""
        return [_bases(v) for v in self.miml_videos(split)]

    def training_bases(self) -> list[str]:
        """Every bases file a dictionary or MIML reads (rule ``bases``)."""
        return sorted({*self.bases(*TRAINING_SPLITS), *self.miml_bases("train"), *self.miml_bases("val")})

    def oracle_bases(self) -> list[str]:
        return [_bases(v) for v in self.oracle_solos()]

    def miml_vision_labels(self) -> list[str]:
        """With ``miml.labels: vision``, what vision sees in each MIML video: the cross-fitted
        labels of the training solos (each from a vision model that did not train on it,
        ``results/vision/crossfit.json``), and the records of the validation solos and of the
        duets, which vision never trains on."""
        if self.config["miml"]["labels"] != "vision":
            return []
        videos = [v for s in TRAINING_SPLITS for v in self.miml_videos(s)]
        train_solos = set(self.solos("train"))
        crossfit = [CROSSFIT_LABELS] if train_solos & set(videos) else []
        return crossfit + [f"results/vision/{v}.json" for v in videos if v not in train_solos]

    def purity_duets(self) -> dict[str, dict[str, str]]:
        """The training duets of MIML whose true stems the dataset carries: video id ->
        instrument -> stem file; the purity of the dictionaries is measured on them."""
        root = dataset_root(self.config)
        duets, out = set(self.duets()), {}
        for v in self.miml_videos("train"):
            if v in duets and stems_folder(root, v).is_dir():
                out[v] = {i: str(stems_folder(root, v) / f"{i}.wav") for i in self.video_labels(v)}
        return out

    def crossfit_solos(self) -> list[str]:
        """The training solos the cross-fitting labels (:meth:`miml_vision_labels`)."""
        solos = set(self.solos("train"))
        return [v for v in self.miml_videos("train") if v in solos]

    # -- stage 6: separation --------------------------------------------------------------
    def separation_inputs(self, item: str, via: str | None, manifest: str) -> dict[str, str]:
        """The audio to separate (a mixture's folder or a duet's audio), the manifest (params
        read it, so a job built on its own, as a cluster job is, needs it), the vision
        stage's labels with a ``separation.labels`` choice that goes through vision, and the
        audio tags where the audio names the item's instruments (:meth:`_hears`)."""
        audio = item_recording(item)
        inputs = {"audio": audio, "manifest": manifest}
        labels = separation_settings(self.config, via)["labels"]
        if labels in VISION_LABELS:
            inputs["vision"] = f"results/vision/{item}.json"
        if self._hears(item, labels):
            inputs["tags"] = audio_tags_file(item)
        return inputs

    def _hears(self, item: str, labels: str) -> bool:
        """Whether ``item``'s instruments are named by the audio under ``labels``
        (:func:`avsep.vision.labels.visible_from`): not where its folder names two first."""
        if labels not in AUDIO_LABELS:
            return False
        return not (labels in FOLDER_LABELS and len(set(self.folder_labels(item))) == 2)

    def audio_tags_inputs(self, item: str) -> dict[str, str]:
        """What ``audio_tags`` reads: the recording (a test mixture's folder or a duet's
        audio) and the MIML network that listens to it."""
        return {"audio": item_recording(item), "model": MIML_MODEL}

    def all_audio_tags(self) -> list[str]:
        """With ``separation.labels: audio+vision`` or ``folder+audio+vision``, the audio
        tags of every item vision labels, for scoring them beside vision's own labels; else
        none."""
        if self.config["separation"]["labels"] not in AUDIO_LABELS:
            return []
        return [audio_tags_file(i) for i in [*self.mixtures(), *self.test_duets()]]

    def visible_instruments(self, item: str) -> dict[str, list[str]]:
        """The instruments to separate and their positions, left to right: the seam where
        the vision stage's labels take over from the ground truth (``separation.labels``)."""
        if is_mixture(item):
            row = self.plan_row(item)
            return {"instruments": [row["left_instrument"], row["right_instrument"]],
                    "positions": ["left", "right"]}
        labels = self.video_labels(item)
        return {"instruments": labels, "positions": ["unknown"] * len(labels)}

    def folder_labels(self, item: str) -> list[str]:
        """The instruments a video's folder names; none for a test mixture, whose protocol
        gives no labels (``separation.labels: folder+vision``)."""
        return [] if is_mixture(item) else self.visible_instruments(item)["instruments"]

    def all_mixture_separations(self) -> list[str]:
        return [f"results/separated/{m}/{mix}" for m in separated_methods(self.config) for mix in self.mixtures()]

    def all_duet_separations(self) -> list[str]:
        return [f"results/separated/{m}/{v}" for m in duet_methods(self.config) for v in self.test_duets()]

    # -- the deep separator (method deep) ---------------------------------------------------
    def deep_videos(self, split: str) -> list[dict[str, str]]:
        """The solos the deep separator learns from in ``split`` (train or val): every
        instrument's, ``miml.solo_excluded`` being MIML's experiment, not this method's."""
        return [{"video_id": r["video_id"], "label": r["labels"], "audio": _audio(r["video_id"]),
                 "frames": _frames(r["video_id"])} for _, r in self._solo_rows([split]).iterrows()]

    def deep_data_inputs(self, vision_model: str, manifest: str) -> dict:
        """The training and validation solos' audio and frames, and the vision model when
        the separator sees through it (``deep.visual: vision``)."""
        videos = [v for s in TRAINING_SPLITS for v in self.deep_videos(s)]
        inputs = {"manifest": manifest, "audio": [v["audio"] for v in videos], "frames": [v["frames"] for v in videos]}
        if self.config["deep"]["visual"] == "vision":
            inputs["vision_model"] = vision_model
        return inputs

    def deep_separation_inputs(self, item: str, manifest: str) -> dict:
        """What ``separate_deep`` reads: the audio, the vision record (the sides and what is
        seen there), the model, the frames when the separator sees pixels (``cnn``), and the
        audio tags where the audio names the instruments (``separation.labels:
        audio+vision``, or ``folder+audio+vision`` for an item no folder names)."""
        inputs = {"audio": item_recording(item), "manifest": manifest,
                  "vision": f"results/vision/{item}.json", "model": DEEP_MODEL}
        if self._hears(item, self.config["separation"]["labels"]):
            inputs["tags"] = audio_tags_file(item)
        if self.config["deep"]["visual"] == "cnn":
            inputs["frames"] = self.vision_item_frames(item)
        return inputs

    # -- localization (avsep/localization.py) ----------------------------------------------
    def localization_items(self) -> list[str]:
        """The items mapped: the test mixtures and the test duets (the items vision labels)."""
        return [*self.mixtures(), *self.test_duets()]

    def localization_training_inputs(self, vision_model: str, manifest: str) -> dict:
        """The train and val solos' frames, audio and boxes (those that exist), and the
        vision model whose backbone the audio-visual head reads."""
        solos = self.solos(*TRAINING_SPLITS)
        return {"manifest": manifest, "vision_model": vision_model, "frames": [_frames(v) for v in solos],
                "audio": [_audio(v) for v in solos], "annotations": [a for a in map(self._annotations, solos) if a]}

    def localization_map_inputs(self, item: str, vision_model: str, manifest: str) -> dict:
        loc = self.config["localization"]
        inputs = {"frames": self.vision_item_frames(item), "vision_model": vision_model, "manifest": manifest}
        if "av" in loc["methods"]:
            inputs["av_model"] = LOCALIZATION_MODEL
            inputs["separated"] = f"results/separated/{localization_separator(self.config)}/{item}"
        return inputs

    def localization_maps(self, item: str) -> list[str]:
        return [f"results/localization/{m}/{item}.h5" for m in self.config["localization"]["methods"]]

    def localization_eval_inputs(self, manifest: str) -> dict:
        """Every item's maps, the boxes they are scored on (the mixtures' sources' and the
        duets' own, or ``localization.annotations``) and the mixtures' folders (their clip
        starts)."""
        loc = self.config["localization"]
        items = self.localization_items()
        videos = [v for m in self.mixtures() for v in (self.plan_row(m)["left_video"], self.plan_row(m)["right_video"])]
        videos += self.test_duets()
        inputs = {"manifest": manifest, "maps": [p for i in items for p in self.localization_maps(i)],
                  "mixtures": [f"results/mixtures/{m}" for m in self.mixtures()],
                  "annotations": sorted({a for a in map(self._annotations, videos) if a})}
        if loc["annotations"]:
            inputs["coco"] = loc["annotations"]
        return inputs

    # -- stage 7: evaluation, the probes and the report -----------------------------------
    def separated_for(self, item: str, methods: Sequence[str]) -> list[str]:
        return [f"results/separated/{m}/{item}" for m in methods]

    def evaluation_models(self, item: str | None = None) -> dict[str, str]:
        """The audio classifiers that name the evaluated tracks: the independent probe, and
        the MIML network when a MIML method is evaluated (it is that method's own); with it,
        ``item``'s audio tags where the run makes them, which already hold the MIML
        network's label of the mixture itself."""
        if not uses_miml(self.config):
            return {"probe": PROBE_MODEL}
        tags = {"tags": audio_tags_file(item)} if item and audio_tags_file(item) in self.all_audio_tags() else {}
        return {"probe": PROBE_MODEL, "miml": MIML_MODEL, **tags}

    def all_evaluations(self) -> list[str]:
        return [f"results/eval/mixtures/{m}.tsv" for m in self.mixtures()]

    def duets_with_stems(self) -> list[str]:
        """The test duets whose true stems the dataset carries (``<root>/stems/<video_id>/``,
        checked in the manifest stage): they are scored like the test mixtures."""
        root = dataset_root(self.config)
        return [v for v in self.test_duets() if stems_folder(root, v).is_dir()]

    def all_duet_evaluations(self) -> list[str]:
        return [f"results/eval/duets/{v}.tsv" for v in self.duets_with_stems()]

    def _annotations(self, video_id: str) -> str | None:
        """A video's box annotations, when the dataset has them (the demo always does)."""
        path = f"{dataset_root(self.config)}/annotations/{video_id}.tsv"
        return path if using_demo(self.config) or Path(path).is_file() else None

    def duet_reference_inputs(self, video_id: str, manifest: str) -> dict:
        root = dataset_root(self.config)
        inputs = {"manifest": manifest, "audio": _audio(video_id),
                  "stems": [str(stems_folder(root, video_id) / f"{i}.wav") for i in self.video_labels(video_id)]}
        annotations = self._annotations(video_id)
        if annotations:
            inputs["annotations"] = annotations
        return inputs

    def duet_annotations(self) -> list[str]:
        """The box annotations of the duets that have them: the true side of each player,
        for scoring vision on duets."""
        return [a for a in map(self._annotations, self.test_duets()) if a]

    def probe_training_inputs(self, feature: str, manifest: str) -> dict:
        inputs = {"manifest": manifest, "audio": [_audio(v) for s in TRAINING_SPLITS for v in self.solos(s)]}
        if feature == "miml":
            inputs["miml"] = MIML_MODEL
        return inputs

    def probe_items(self) -> list[str]:
        """What the probe report scores: the test solos and the test mixtures."""
        return self.solos("test") + self.mixtures()

    def _probe_models(self) -> dict:
        return {"probes": probe_files(self.config),
                **({"miml": MIML_MODEL} if "miml" in probe_features(self.config) else {})}

    def probe_mixture_inputs(self, mix_id: str) -> dict:
        """One test mixture's probe labels: the probes, the mixture and every method's tracks."""
        return {**self._probe_models(), "item": f"results/mixtures/{mix_id}",
                "separated": self.separated_for(mix_id, separated_methods(self.config))}

    def probe_report_inputs(self, manifest: str) -> dict:
        """The probe report: the test solo videos, labelled there, and every test mixture's
        labels from probe_mixture."""
        return {"manifest": manifest, **self._probe_models(), "solo": [_audio(v) for v in self.solos("test")],
                "predictions": [f"results/probe/mixtures/{m}.tsv" for m in self.mixtures()]}

    def showcase_mixtures(self) -> list[str]:
        return self.mixtures()[: self.config["report"]["showcase"]]

    def showcase_inputs(self, mix_id: str) -> dict:
        inputs = {"mixture": f"results/mixtures/{mix_id}",
                  "separated": self.separated_for(mix_id, separated_methods(self.config)),
                  "scores": f"results/eval/mixtures/{mix_id}.tsv",
                  "vision": f"results/vision/{mix_id}.json"}
        loc = self.config["localization"]
        shown = [m for m in loc["methods"] if m in ("cam", "av")]
        if loc["enabled"] and shown:
            row = self.plan_row(mix_id)
            inputs["maps"] = [f"results/localization/{m}/{mix_id}.h5" for m in shown]
            inputs["annotations"] = [a for a in map(self._annotations, (row["left_video"], row["right_video"])) if a]
            inputs["manifest"] = "results/manifest.tsv"
        return inputs

    def showcase_pages(self) -> list[str]:
        return [f"results/report/showcase/{m}.html" for m in self.showcase_mixtures()]
