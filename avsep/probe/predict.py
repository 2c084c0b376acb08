"""A trained probe's labels: the instrument it names for a track (:func:`predict_track`,
:func:`name_tracks`), and every probe's label for every audible clip of many tracks
(:func:`predict_clips`), such as the tracks of the probe report: the test solo clips
(:func:`solo_tracks`), and per test mixture the mixture and every method's tracks
(:func:`mixture_tracks`, one job per mixture in the workflow). :func:`load_probes` reads the
trained probes with what their features need.

A clip whose true stem is silent holds no instrument and is left out.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from avsep.errors import InputError
from avsep.evaluation.matching import method_estimates
from avsep.files import read_wav
from avsep.mixtures import read_item
from avsep.probe.features import CLIP_SECONDS, clip_levels_db, track_features
from avsep.probe.model import Probe
from avsep.separation import read_separation

__all__ = ["predict_track", "name_tracks", "PREDICTION_COLUMNS", "predict_clips", "solo_tracks", "mixture_tracks",
           "load_probes", "read_predictions"]

PREDICTION_COLUMNS = ["feature", "probe", "input", "item", "instrument", "clip", "predicted", "correct"]


def predict_track(probe: Probe, X: np.ndarray) -> tuple[str, np.ndarray]:
    """Name the instrument of a track from the features of its clips.

    Args:
        X: ``(nb_clips, D)``, e.g. :func:`avsep.probe.features.logmel_clips` of the track.

    Returns:
        the most likely label and the ``(L,)`` mean of the clips' probabilities.
    """
    if len(X) == 0:
        raise InputError("the track has no clips")
    probs = probe.predict_proba(X).mean(axis=0)
    return probe.label_names[int(probs.argmax())], probs


def name_tracks(probe: Probe, tracks: dict, sample_rate: int, *, miml: tuple | None = None,
                device: str = "cpu") -> dict:
    """Name each track of ``tracks`` (name -> mono audio) with ``probe``: name -> label
    (:func:`predict_track` over the clips of :func:`avsep.probe.features.track_features`, at the clip length the
    probe was trained with)."""
    seconds = float(probe.feature_params.get("clip_seconds", CLIP_SECONDS))
    rate = probe.feature_params.get("sample_rate")
    if rate is not None and int(rate) != int(sample_rate):
        raise InputError(f"the {probe.feature} {probe.kind} probe was trained on audio at {rate} Hz, "
                         f"got audio at {sample_rate} Hz")
    return {name: predict_track(probe, track_features(probe.feature, wave, sample_rate, seconds=seconds,
                                                      miml=miml, device=device))[0]
            for name, wave in tracks.items()}


def predict_clips(probes: Mapping[str, Probe], tracks: Iterable[tuple], sample_rate: int, *, silence_db: float,
                  miml: tuple | None = None, device: str = "cpu") -> pd.DataFrame:
    """Every probe's label for every audible clip of every track.

    Args:
        probes: name (``<feature>_<kind>``) -> probe.
        tracks: ``(input, item, instrument, audio, reference)``: which input it is (``solo``,
            ``mixture``, a method), the item, the instrument it should hold, its audio, and
            the true stem whose silent clips are left out (``None``: the audio itself).
        miml: ``(model, stft_cfg, nmf_cfg)`` for probes on the ``miml`` feature.

    Returns:
        One row per probe and clip, :data:`PREDICTION_COLUMNS`.

    The features of a track are computed once per distinct audio: the mixture is given once
    per instrument, and methods often give the same track (``miml_nmf`` and
    ``miml_nmf_truth`` where vision was right).
    """
    rows = []
    seconds = {p.feature: float(p.feature_params.get("clip_seconds", 5.0)) for p in probes.values()}
    computed: dict[str, dict] = {}
    for input_name, item, instrument, audio, reference in tracks:
        # Per feature, once per distinct track: its clips' features; per track, which clips
        # are audible (in its reference).
        key = hashlib.sha1(np.ascontiguousarray(audio).tobytes()).hexdigest()
        if key not in computed:
            computed[key] = {f: track_features(f, audio, sample_rate, seconds=s, miml=miml, device=device)
                             for f, s in seconds.items()}
        features = computed[key]
        audible_of = {f: clip_levels_db(audio if reference is None else reference, sample_rate, s)[: len(features[f])]
                      > silence_db for f, s in seconds.items()}
        for probe in probes.values():
            X, audible = features[probe.feature], audible_of[probe.feature]
            if not audible.any():
                continue
            predicted = probe.predict(X[audible])
            for clip, label in zip(np.flatnonzero(audible), predicted):
                rows.append({"feature": probe.feature, "probe": probe.kind, "input": input_name, "item": item,
                             "instrument": instrument, "clip": int(clip), "predicted": str(label),
                             "correct": str(label) == instrument})
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


def solo_tracks(solo: Sequence[str], label_of: Mapping[str, str]) -> Iterator[tuple]:
    """The test solo videos as :func:`predict_clips` reads them, ``("solo", video id,
    instrument, audio, None)``: each its own reference.

    Args:
        solo: the WAV files, named ``<video_id>.wav``.
        label_of: video id -> the instrument of the video.
    """
    for path in solo:
        vid = Path(path).stem
        yield "solo", vid, label_of[vid], read_wav(path)[0], None


def mixture_tracks(item: str | Path, separated: Mapping[str, str | Path]) -> Iterator[tuple]:
    """One test mixture's tracks as :func:`predict_clips` reads them: the mixture once per
    instrument (the instrument's true stem the reference), then every method's track of each
    instrument, matched to the instrument as the evaluation matches it
    (:func:`avsep.evaluation.matching.method_estimates`).

    Args:
        item: the mixture's folder (:func:`avsep.mixtures.read_item`).
        separated: method -> its output folder for this mixture
            (:func:`avsep.separation.read_separation`), in the methods' order.
    """
    meta, mixture, _, stems, sides = read_item(item)
    for inst, stem in stems.items():
        yield "mixture", meta["mix_id"], inst, mixture, stem
    for method, folder in separated.items():
        _, own = read_separation(folder)
        estimates, _ = method_estimates(mixture, sides, own)
        for inst, stem in stems.items():
            yield method, meta["mix_id"], inst, estimates[inst], stem


def load_probes(files: Sequence[str | Path], *, miml: str | Path | None = None, stft: Mapping | None = None,
                nmf: Mapping | None = None, device: str = "cpu") -> tuple[dict, tuple | None]:
    """The trained probes, name (the file's stem, ``<feature>_<kind>``) -> probe, and the
    ``miml`` argument of :func:`predict_clips` when one of them reads the ``miml`` feature
    (:func:`avsep.probe.features.load_miml_feature` of the MIML network ``miml`` with the
    ``audio`` and ``nmf`` settings ``stft`` and ``nmf``), else None."""
    from avsep.probe.features import load_miml_feature
    from avsep.probe.model import load_probe

    probes = {Path(f).stem: load_probe(f) for f in files}
    if not any(probe.feature == "miml" for probe in probes.values()):
        return probes, None
    if miml is None:
        raise InputError("a probe on the miml feature needs the trained MIML network")
    return probes, load_miml_feature(miml, stft, nmf, device)


def read_predictions(path: str | Path) -> pd.DataFrame:
    """A table of :func:`predict_clips` written by :func:`avsep.files.write_table`, with its
    columns' types: ids and labels as text, ``clip`` an integer, ``correct`` a boolean."""
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if list(table.columns) != PREDICTION_COLUMNS:
        raise InputError(f"{path}: expected the columns {PREDICTION_COLUMNS}, got {list(table.columns)}")
    bad = sorted(set(table["correct"]) - {"True", "False"})
    if bad:
        raise InputError(f"{path}: 'correct' must be True or False, got {bad[:3]}")
    return table.astype({"clip": int}).assign(correct=table["correct"] == "True")
