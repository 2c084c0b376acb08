"""Training the probe (:func:`train_probe`). A ``StandardScaler`` fitted on the training clips
only; then ``linear`` (one ``nn.Linear``) or ``mlp`` (Linear-ReLU-Linear-ReLU-Linear, hidden
width :data:`avsep.probe.model.MLP_HIDDEN`), trained with cross-entropy and Adam, seeded.
After every epoch the validation clips are scored; the epoch with the best validation
accuracy (ties: the lower validation loss) is kept, and training stops when ``patience``
epochs in a row have not bettered it.

The workflow's probes (:func:`train_probes`) are trained on the audible clips of the
train-split solo videos and validated on the val split's (:func:`solo_clips`).
"""

from __future__ import annotations

import copy
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from avsep.errors import InputError
from avsep.files import read_wav
from avsep.probe.features import clip_levels_db, track_features
from avsep.probe.model import PROBE_KINDS, Probe, _build_module, _features, _labels

__all__ = ["train_probe", "solo_clips", "train_probes"]


def _evaluate(module: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``module`` on standardised features."""
    module.eval()
    with torch.no_grad():
        logits = module(X)
        return (float((logits.argmax(1) == y).float().mean()),
                float(nn.functional.cross_entropy(logits, y)))


def train_probe(
    X_train: np.ndarray,
    y_train: Sequence,
    X_val: np.ndarray,
    y_val: Sequence,
    *,
    kind: str = "linear",
    feature: str = "logmel",
    seed: int = 0,
    max_epochs: int = 300,
    patience: int = 30,
    lr: float = 1e-3,
    batch_size: int = 64,
    feature_params: dict | None = None,
    log: Callable[[str], None] | None = None,
) -> Probe:
    """Train a probe on frozen clip features, keeping the best epoch on validation.

    The features are standardised with the training clips' mean and deviation
    (``sklearn.preprocessing.StandardScaler``; a constant feature keeps scale 1). The
    classifier is trained with cross-entropy and Adam on shuffled mini-batches, both seeded
    (the global torch random state is left as it was). After every epoch the validation
    clips are scored; the epoch with the best accuracy, ties broken by the lower loss, is
    kept, and training stops after ``patience`` epochs without a better one, or at
    ``max_epochs``.

    Args:
        X_train, X_val: ``(nb_clips, D)`` features.
        y_train, y_val: ``(nb_clips,)`` labels (compared as strings). The classes are the
            sorted training labels; every validation label must be one of them.
        kind: ``linear`` or ``mlp`` (Linear-ReLU-Linear-ReLU-Linear, hidden width
            :data:`avsep.probe.model.MLP_HIDDEN`).
        feature: the feature's name, stored with the probe.
        seed: initial weights and batch order.
        max_epochs, patience: epochs at most; epochs without a better validation score
            before stopping.
        lr, batch_size: Adam's learning rate; clips per step.
        feature_params: stored with the probe (see :class:`Probe`).
        log: called with a line every 10 epochs and at the end.

    Returns:
        the :class:`Probe` holding the kept epoch's weights; its history marks that row
        ``selected``.
    """
    from sklearn.preprocessing import StandardScaler

    X_train, X_val = _features(X_train, "X_train"), _features(X_val, "X_val")
    y_train, y_val = _labels(y_train, len(X_train), "y_train"), _labels(y_val, len(X_val), "y_val")
    if kind not in PROBE_KINDS:
        raise InputError(f"probe kind must be one of {PROBE_KINDS}, got {kind!r}")
    if X_val.shape[1] != X_train.shape[1]:
        raise InputError(f"X_val has {X_val.shape[1]} features per clip, X_train {X_train.shape[1]}")
    label_names = sorted(str(v) for v in set(y_train))
    if len(label_names) < 2:
        raise InputError(f"the training clips hold {len(label_names)} class(es) {label_names}; a probe needs "
                         "at least 2")
    if len(X_val) == 0:
        raise InputError("no validation clips: the probe keeps its best epoch on validation")
    unseen = sorted(str(v) for v in set(y_val) - set(label_names))
    if unseen:
        raise InputError(f"validation labels {unseen} have no training clips (training classes: {label_names})")
    if max_epochs < 1 or patience < 1 or batch_size < 1:
        raise InputError(f"max_epochs, patience and batch_size must be >= 1, got {max_epochs}, {patience}, "
                         f"{batch_size}")
    index = {name: i for i, name in enumerate(label_names)}
    scaler = StandardScaler().fit(X_train)
    Xt = torch.from_numpy(scaler.transform(X_train).astype(np.float32))
    Xv = torch.from_numpy(scaler.transform(X_val).astype(np.float32))
    yt = torch.tensor([index[v] for v in y_train], dtype=torch.int64)
    yv = torch.tensor([index[v] for v in y_val], dtype=torch.int64)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _build_module(kind, Xt.shape[1], len(label_names))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict] = []
    best, best_state = None, None
    for epoch in range(1, max_epochs + 1):
        module.train()
        total = 0.0
        for idx in torch.randperm(len(Xt), generator=gen).split(batch_size):
            loss = loss_fn(module(Xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_acc, _ = _evaluate(module, Xt, yt)
        val_acc, val_loss = _evaluate(module, Xv, yv)
        row = {"epoch": epoch, "loss": total / len(Xt), "train_acc": train_acc, "val_acc": val_acc,
               "val_loss": val_loss, "selected": False}
        history.append(row)
        if best is None or (val_acc, -val_loss) > (best["val_acc"], -best["val_loss"]):
            best, best_state = row, copy.deepcopy(module.state_dict())
        if log and epoch % 10 == 0:
            log(f"{kind} probe epoch {epoch}: loss {row['loss']:.4f} train_acc {train_acc:.3f} "
                f"val_acc {val_acc:.3f} val_loss {val_loss:.4f}")
        if epoch - best["epoch"] >= patience:
            break
    best["selected"] = True
    module.load_state_dict(best_state)
    if log:
        log(f"{kind} probe: kept epoch {best['epoch']} of {len(history)} (val_acc {best['val_acc']:.3f}, "
            f"val_loss {best['val_loss']:.4f})")
    return Probe(kind=kind, feature=feature, label_names=label_names, mean=scaler.mean_.copy(),
                 scale=scaler.scale_.copy(), module=module.eval(), history=history, seed=seed,
                 feature_params=dict(feature_params or {}))


def solo_clips(manifest: pd.DataFrame, audio_of: Mapping[str, str], features: Sequence[str], *, seconds: float,
               silence_db: float, miml: tuple | None = None, device: str = "cpu",
               progress: Callable[[int, int], None] | None = None) -> tuple[dict, int, int]:
    """The audible clips of the train- and val-split solo videos, with their features.

    Args:
        manifest: the dataset manifest (:func:`avsep.dataset.read_manifest`).
        audio_of: video id -> its WAV file, for every train and val solo video.
        features: the features to compute (:data:`avsep.probe.features.FEATURES`).
        seconds: clip length in seconds.
        silence_db: a clip at or below this level (:func:`avsep.probe.features.clip_levels_db`)
            holds no instrument and is left out.
        miml: see :func:`avsep.probe.features.track_features`.
        progress: called with ``(videos done, videos)`` after every video.

    Returns:
        ``clips[feature][split]``, ``(X, y)`` for the splits ``train`` and ``val``: the clips'
        ``(nb_clips, D)`` features and their labels; the number of silent clips left out; the
        audio's sample rate.
    """
    solo = manifest[(manifest["kind"] == "solo") & manifest["split"].isin(["train", "val"])]
    clips = {feature: {"train": [[], []], "val": [[], []]} for feature in features}
    dropped = 0
    for k, row in enumerate(solo.itertuples()):
        wave, sr = read_wav(audio_of[row.video_id])
        loud = clip_levels_db(wave, sr, seconds) > silence_db  # silence is no instrument
        dropped += int((~loud).sum())
        for feature in features:
            X = track_features(feature, wave, sr, seconds=seconds, miml=miml, device=device)[loud]
            clips[feature][row.split][0].append(X)
            clips[feature][row.split][1] += [row.labels] * len(X)
        if progress:
            progress(k + 1, len(solo))
    clips = {feature: {split: (np.concatenate(x), y) for split, (x, y) in splits.items()}
             for feature, splits in clips.items()}
    return clips, dropped, sr


def train_probes(clips: Mapping[str, Mapping[str, tuple]], kinds: Sequence[str], *, sample_rate: int,
                 seconds: float, seed: int = 0, max_epochs: int = 300, patience: int = 30,
                 log: Callable[[str], None] | None = None) -> tuple[dict, pd.DataFrame]:
    """One probe per feature and kind, by :func:`train_probe` on the clips of :func:`solo_clips`.

    Args:
        clips: ``clips[feature][split]``, ``(X, y)`` for the splits ``train`` and ``val``.
        kinds: the probe kinds (:data:`avsep.probe.model.PROBE_KINDS`).
        sample_rate, seconds: the audio's sample rate and the clip length, stored with every
            probe.
        seed, max_epochs, patience: see :func:`train_probe`.
        log: called with :func:`train_probe`'s lines and one line per probe.

    Returns:
        ``(feature, kind)`` -> the probe, and one row per probe: ``feature, probe,
        train_clips, val_clips, epochs, best_epoch, train_acc, val_acc`` (at the kept epoch).
    """
    probes, rows = {}, []
    for feature, splits in clips.items():
        (Xtr, ytr), (Xva, yva) = splits["train"], splits["val"]
        for kind in kinds:
            probe = train_probe(Xtr, ytr, Xva, yva, kind=kind, feature=feature, seed=seed,
                                max_epochs=max_epochs, patience=patience,
                                feature_params={"sample_rate": sample_rate, "clip_seconds": seconds},
                                log=log)
            probes[feature, kind] = probe
            best = next(r for r in probe.history if r["selected"])
            rows.append({"feature": feature, "probe": kind, "train_clips": len(ytr), "val_clips": len(yva),
                         "epochs": len(probe.history), "best_epoch": best["epoch"],
                         "train_acc": round(best["train_acc"], 4), "val_acc": round(best["val_acc"], 4)})
            if log:
                log(f"{feature} {kind} probe: val accuracy {best['val_acc']:.3f} at epoch {best['epoch']} "
                    f"of {len(probe.history)}")
    return probes, pd.DataFrame(rows)
