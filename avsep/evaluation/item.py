"""How one test mixture or duet with true stems is scored: every method's tracks matched to
the sources, each method's failures and vision's placement recorded, the tracks named by
the audio classifiers, then BSS Eval of them all (:func:`evaluate_item`, the
``evaluate_mixture`` and ``evaluate_duet`` rules)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Mapping

import pandas as pd

from avsep.devices import pick_device
from avsep.evaluation.matching import method_estimates
from avsep.evaluation.scores import evaluate_mixture
from avsep.mixtures import read_item
from avsep.separation import read_separation
from avsep.vision.labels import VISION_LABELS

__all__ = ["evaluate_item"]

log = logging.getLogger(__name__)


def evaluate_item(
    item: str | Path,
    separated: Mapping[str, str | Path],
    *,
    backend: str = "mir_eval",
    device: str = "auto",
    probe: str | Path | None = None,
    miml: str | Path | None = None,
    stft: Mapping | None = None,
    nmf: Mapping | None = None,
    tags: str | Path | None = None,
) -> pd.DataFrame:
    """Score every method's separation of one item against its true stems.

    Each source's estimate is the track :func:`avsep.evaluation.matching.method_estimates`
    matches to it; a method that separated nothing (``failed`` in its
    ``separation.json``) has the mixture as every estimate and says why in ``failed``. For
    methods whose instruments came from vision (``labels_from`` ``vision``,
    ``folder+vision`` or ``audio+vision``), the placement says whether vision named the item's instruments,
    whether each source's track sits on its true side (not scored where the side is not
    known: a duet without box annotations) and whether vision was uncertain (and the method
    still separated).

    With ``probe``, the independent audio probe (:mod:`avsep.probe`) names every estimate
    and the mixture (columns ``audio_label``, ``audio_correct``). With ``miml``, the MIML
    network names every track from the track's own bases
    (:func:`avsep.miml.predict.predict_instrument`; columns ``miml_audio_label``,
    ``miml_audio_correct``). It also chose ``miml_nmf``'s bases, so that accuracy is not
    independent of that method. Each distinct track is factored once: methods often give
    the same track (``miml_nmf`` and ``miml_nmf_truth`` where vision was right), and the
    mixture is every source's estimate of the baseline.

    Args:
        item: the item's folder (:func:`avsep.mixtures.read_item`).
        separated: method -> its output folder for this item
            (:func:`avsep.separation.read_separation`), in the methods' order.
        backend: the BSS Eval backend (:func:`avsep.evaluation.scores.evaluate_mixture`).
        device: the ``device`` setting the MIML network runs on (:func:`avsep.devices.pick_device`).
        probe: the audio probe's file, or None.
        miml: the trained MIML network's file (:func:`avsep.miml.model.load_model`), or None.
        stft, nmf: with ``miml``, the ``audio`` and ``nmf`` settings its bases were computed
            with.
        tags: with ``miml``, the item's audio tags (rule ``audio_tags``), or None: their first
            name is the network's label of the mixture, which is then not factored again.

    Returns:
        The table of :func:`avsep.evaluation.scores.evaluate_mixture`, with the item's
        ``kind`` (``mixture`` unless its ``mixture.json`` says otherwise) as the second column.
    """
    meta, mixture, sr, stems, true_side = read_item(item)
    estimates, placement, matched, failed = {}, {}, {}, {}
    for method, folder in separated.items():
        info, tracks = read_separation(folder)
        estimates[method], matched[method] = method_estimates(mixture, true_side, tracks)
        if info.get("failed"):
            failed[method] = info["failed"]
            log.warning("%s: %s separated nothing (%s); its sources are scored as the mixture",
                        meta["mix_id"], method, info["failed"])
        by_position = [s for s, (_, how) in matched[method].items() if how != "label"]
        if by_position:
            log.info("%s: %s has no track labelled %s; matched %s", meta["mix_id"], method,
                     ", ".join(by_position), ", ".join(f"{s}->{matched[method][s][0] or 'mixture'}" for s in by_position))
        if info.get("labels_from") in VISION_LABELS:
            side_of = dict(zip(info["instruments"], info["positions"]))
            placement[method] = {
                "visual_correct": set(info["instruments"]) == set(stems),
                # A duet without box annotations has no known sides: not scored.
                "location": {inst: None if true_side[inst] is None else side_of.get(inst) == true_side[inst]
                             for inst in stems},
                "uncertain": bool(info.get("uncertain")) and not info.get("failed"),
            }
    device = pick_device(device)
    labels = {}
    if probe is not None:
        from avsep.probe.model import load_probe
        from avsep.probe.predict import name_tracks

        audio_probe = load_probe(probe)
        labels["audio"] = {method: name_tracks(audio_probe, by_inst, sr) for method, by_inst in estimates.items()}
        labels["audio"]["mixture"] = dict.fromkeys(stems, name_tracks(audio_probe, {"mixture": mixture}, sr)["mixture"])
    if miml is not None:
        heard = json.loads(Path(tags).read_text()) if tags is not None else None
        labels["miml_audio"] = _miml_labels(miml, mixture, stems, estimates, stft, nmf, device,
                                            mixture_label=None if heard is None else (heard["ranked"] or [""])[0])
    table = evaluate_mixture(meta["mix_id"], mixture, stems, estimates, true_side, labels, placement,
                             backend=backend, matched=matched, failed=failed)
    table.insert(1, "kind", meta.get("kind", "mixture"))
    log.info("%s: mean SDR %s", meta["mix_id"], table.groupby("method")["sdr"].mean().round(2).to_dict())
    return table


def _miml_labels(path, mixture, stems, estimates, stft, nmf, device, mixture_label: str | None = None) -> dict:
    """method -> instrument -> the MIML network's label of that estimate; the baseline
    ``mixture`` first (``mixture_label`` where the audio tags already give it), then the
    methods in order."""
    from avsep.bases import NMFConfig
    from avsep.miml.model import load_model
    from avsep.miml.predict import predict_instrument
    from avsep.transforms import STFTConfig

    model, model_meta = load_model(path, device)
    stft_cfg, nmf_cfg = STFTConfig(**stft), NMFConfig(**nmf)
    named = {}

    def name(track):
        key = hashlib.sha1(track.tobytes()).hexdigest()
        if key not in named:
            named[key] = predict_instrument(model, track, stft_cfg, nmf_cfg, model_meta["label_names"], device)[0]
        return named[key]

    if mixture_label is None:
        mixture_label = name(mixture)  # the mixture is every source's "estimate": classify it once
    labels = {"mixture": dict.fromkeys(stems, mixture_label)}
    labels.update({method: {inst: name(track) for inst, track in by_inst.items()}
                   for method, by_inst in estimates.items()})
    return labels
