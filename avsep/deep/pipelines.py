"""The deep separator's rules' work, from the files they name and their config dicts:
``scripts/deep_data.py`` (:func:`build_clips`), ``scripts/train_deep.py``
(:func:`train_and_save`) and ``scripts/separate_deep.py`` (:func:`separate_item`)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from avsep.deep.data import DeepClips
from avsep.deep.model import DeepConfig
from avsep.deep.spectral import DeepAudio
from avsep.errors import InputError

__all__ = ["build_clips", "train_and_save", "separate_item"]


def _vision_functions(vision_model: str | Path, v: Mapping, device: str):
    """The frozen vision model as ``classify`` (halves) or ``detect`` (detector), and its classes."""
    if v["method"] == "halves":
        from avsep.vision.classifier import classify_images, load_classifier

        model, meta = load_classifier(vision_model, device)
        return (lambda images: classify_images(model, images, input_size=meta["input_size"], device=device)), \
            None, list(meta["label_names"])
    from avsep.files import read_checkpoint
    from avsep.vision.detector import detect, load_detector

    checkpoint = read_checkpoint(vision_model)
    names = list(checkpoint["label_names"])
    model = load_detector(checkpoint, len(names), score_threshold=0.05, nms_iou=v["detector"]["nms_iou"]).to(device)
    return None, (lambda frames: detect(model, frames, nms_iou=v["detector"]["nms_iou"], device=device)), names


def build_clips(videos: Sequence[Mapping], cfg: DeepConfig, audio: DeepAudio, *, label_names: Sequence[str],
                v: Mapping, vision_model: str | Path | None, frames_fps: float, device: str,
                log: logging.Logger) -> DeepClips:
    """Rule ``deep_data``: the clips of one split's solos.

    Args:
        videos: per solo, ``{"video_id", "label", "audio", "frames"}`` (file paths).
        label_names: the instruments, sorted.
        v: the ``vision`` config (its ``method``) and ``vision_model`` its trained model
            (``deep.visual: vision``).
    """
    from avsep.files import read_frames, read_mono
    from avsep.deep.visual import resized, solo_vector
    from avsep.logs import progress_logger
    from avsep.vision.training import sample_indices

    classify = detect = None
    if cfg.visual == "vision":
        classify, detect, names = _vision_functions(vision_model, v, device)
        if list(names) != list(label_names):
            raise InputError(f"the vision model names {', '.join(names)}; the deep separator trains on "
                             f"{', '.join(label_names)}")
    clips = DeepClips([], [], list(label_names), [], [], [], cfg.visual, audio.sample_rate)
    step = progress_logger(log, "deep clips")
    for k, row in enumerate(videos):
        frames, stamps, _ = read_frames(row["frames"], expect={"fps": frames_fps})
        if cfg.visual == "vision":
            picks = sample_indices(len(frames), cfg.frames_per_video)
            visual = solo_vector(frames[picks], v["method"], label_names, classify=classify, detect=detect)
            times = np.zeros(1)
        else:
            visual, times = resized(frames, cfg.image_size), np.asarray(stamps, np.float64)
        clips.video_ids.append(row["video_id"])
        clips.labels.append(row["label"])
        clips.audio.append(read_mono(row["audio"], audio.sample_rate))
        clips.visual.append(visual)
        clips.visual_times.append(times)
        step(k + 1, len(videos))
    return clips


def train_and_save(train_path: str | Path, val_path: str | Path, d: Mapping, *, device: str, model_path: str | Path,
                   metrics_path: str | Path, curves_path: str | Path, timing_path: str | Path,
                   learning_curve_path: str | Path, checkpoint: str | Path, log: logging.Logger):
    """Rule ``train_deep``: train (from ``deep.weights`` when given), keep the best epoch,
    write the model, the metrics and curves per epoch (the same from run to run), and the
    training minutes with the learning curve against them (which measure the run)."""
    from avsep.deep.data import read_clips
    from avsep.deep.model import load_separator, save_separator
    from avsep.deep.train import train_deep
    from avsep.files import atomic_path, write_table
    from avsep.report.plots import plot_deep_curves, plot_deep_learning_curve

    cfg, audio = DeepConfig.from_config(d), DeepAudio.from_config(d["audio"])
    train, val = read_clips(train_path), read_clips(val_path)
    initial = None
    if d["weights"]:
        start, _ = load_separator(d["weights"], cfg=cfg, label_names=train.label_names)
        if start.audio != audio:
            raise InputError(f"deep.weights: made with audio settings {start.audio}; deep.audio is {audio}")
        initial = start.state_dict()
        log.info("starting from deep.weights %s", d["weights"])
    Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
    model, metrics = train_deep(train, val, cfg, audio, device=device, checkpoint=checkpoint, initial_state=initial,
                                log=log.info)
    best = int(metrics.loc[metrics["val_sdr"].idxmax(), "epoch"]) if len(metrics) else 0
    steady = metrics.drop(columns=["minutes"])
    save_separator(model_path, model, train.label_names, metrics=steady.to_dict("list"), best_epoch=best,
                   started_from=str(d["weights"]))
    write_table(metrics_path, steady.round(5))
    write_table(timing_path, metrics[["epoch", "minutes", "val_sdr"]].round(4))
    with atomic_path(curves_path) as tmp:
        plot_deep_curves(steady, cfg, tmp)
    with atomic_path(learning_curve_path) as tmp:
        plot_deep_learning_curve(metrics, cfg, tmp)
    Path(checkpoint).unlink(missing_ok=True)
    return metrics


def separate_item(item: str, audio_path: str | Path, record: Mapping, visible: Mapping, model_path: str | Path, *,
                  frames_path: str | Path | None, frames_fps: float, native: Mapping, device: str,
                  log: logging.Logger) -> tuple[dict, list[np.ndarray], int]:
    """Rule ``separate_deep``: the tracks of one mixture or duet, one per visible instrument,
    each from what is seen on its side. Returns ``(record, estimates, sample_rate)``; like
    the NMF methods, nothing is separated when the labels name fewer than two instruments."""
    from avsep.deep.model import load_separator
    from avsep.deep.separate import separate_deep
    from avsep.deep.visual import record_vector, region_images
    from avsep.files import read_frames, read_wav
    from avsep.transforms import STFTConfig

    source = Path(audio_path)
    mixture, sr = read_wav(source / "mixture.wav" if source.is_dir() else source)
    if mixture.ndim > 1:
        mixture = mixture.mean(axis=1)
    model, checkpoint = load_separator(model_path, key="the deep model", device=device)
    names = checkpoint["label_names"]
    instruments, positions = list(visible["instruments"]), list(visible["positions"])
    out = {"method": "deep", "item": item, "instruments": instruments, "positions": positions,
           "labels_from": visible.get("labels_from", "vision"), "uncertain": bool(visible.get("uncertain", False)),
           "network": model.cfg.network, "condition": model.cfg.condition, "visual": model.cfg.visual}
    if len(set(instruments)) < 2:
        problem = (f"{out['labels_from']} labels name {', '.join(instruments) or 'no instrument'}; the "
                   "separation needs two different instruments")
        log.warning("%s: %s: nothing separated", item, problem)
        out.update(instruments=[], positions=[], uncertain=True, failed=problem, vision_named=instruments)
        return out, [], sr
    if model.cfg.visual == "vision":
        visuals = [record_vector(record, pos, names) for pos in positions]
        times = None
        out["conditioning"] = {inst: dict(zip(names, np.round(vec, 4).tolist())) for inst, vec in
                               zip(instruments, visuals)}
    else:
        frames, stamps, _ = read_frames(Path(frames_path) / "frames.h5" if Path(frames_path).is_dir() else frames_path,
                                        expect={"fps": frames_fps})
        visuals = [region_images(frames, record, pos, model.cfg.image_size) for pos in positions]
        times = [np.asarray(stamps)] * len(positions)
    estimates = separate_deep(model, mixture, sr, STFTConfig(sample_rate=sr, **native), visuals, times,
                              normalize=model.cfg.normalize, device=device)
    log.info("%s: %s separated (deep %s, %s conditioning, %s features)", item, " | ".join(instruments),
             model.cfg.network, model.cfg.condition, model.cfg.visual)
    return out, list(estimates), sr
