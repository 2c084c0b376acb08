"""A trained probe's labels: the instrument it names for a track (:func:`predict_track`,
:func:`name_tracks`), and every probe's label for every audible clip of many tracks
(:func:`predict_clips`), such as the tracks of the probe report (:func:`report_tracks`): the
test solo clips, the mixtures and every method's tracks.

A clip whose true stem is silent holds no instrument and is left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from avsep.errors import InputError
from avsep.evaluation.matching import method_estimates
from avsep.files import read_wav
from avsep.mixtures import read_item
from avsep.probe.features import CLIP_SECONDS, clip_levels_db, track_features
from avsep.probe.model import Probe
from avsep.separation import read_separation

__all__ = ["predict_track", "name_tracks", "PREDICTION_COLUMNS", "predict_clips", "report_tracks"]

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
    """
    rows = []
    seconds = {p.feature: float(p.feature_params.get("clip_seconds", 5.0)) for p in probes.values()}
    for input_name, item, instrument, audio, reference in tracks:
        # Per feature, once per track: its clips' features, and which clips are audible.
        features = {f: track_features(f, audio, sample_rate, seconds=s, miml=miml, device=device)
                    for f, s in seconds.items()}
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


def report_tracks(solo: Sequence[str], mixtures: Sequence[str], separated: Sequence[str], methods: Sequence[str],
                  label_of: Mapping[str, str], *,
                  progress: Callable[[int, int], None] | None = None) -> Iterator[tuple]:
    """The tracks of the probe report, as :func:`predict_clips` reads them: ``(input, item,
    instrument, audio, reference)``. First every test solo video (its own audio the
    reference); then, per test mixture, the mixture once per instrument (the instrument's
    true stem the reference), and every method's track of each instrument, matched to the
    instrument as the evaluation matches it (:func:`avsep.evaluation.matching.method_estimates`).

    Args:
        solo: the test solo videos' WAV files, named ``<video_id>.wav``.
        mixtures: the test mixtures' folders (:func:`avsep.mixtures.read_item`).
        separated: every method's output folder for every mixture, ``<method>/<mix_id>``
            (:func:`avsep.separation.read_separation`).
        methods: the methods whose tracks to name, in order.
        label_of: video id -> the instrument of the video.
        progress: called with ``(tracks given, tracks)`` after every track.
    """
    n_tracks = len(solo) + len(mixtures) * (len(methods) + 1) * 2
    for k, track in enumerate(_report_tracks(solo, mixtures, separated, methods, label_of)):
        yield track
        if progress:
            progress(k + 1, n_tracks)


def _report_tracks(solo, mixtures, separated, methods, label_of):
    for path in solo:
        vid = Path(path).stem
        yield "solo", vid, label_of[vid], read_wav(path)[0], None
    # results/separated/<method>/<item>
    separated = {(Path(f).parent.name, Path(f).name): f for f in separated}
    for item_dir in map(Path, mixtures):
        meta, mixture, _, stems, sides = read_item(item_dir)
        for inst, stem in stems.items():
            yield "mixture", meta["mix_id"], inst, mixture, stem
        for method in methods:
            _, own = read_separation(separated[(method, meta["mix_id"])])
            estimates, _ = method_estimates(mixture, sides, own)
            for inst, stem in stems.items():
                yield method, meta["mix_id"], inst, estimates[inst], stem
