"""Training the deep separator by mix-and-separate: AdamW with a warm-up and a cosine decay
per step, the loss weighted by log(1 + |mixture|), validation on fixed pairs after every
epoch (the best epoch's weights are kept), seeded, and resumable from a per-epoch
checkpoint so that a killed job ends as an uninterrupted one would."""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from avsep.deep.data import DeepClips, MixBatch, MixSampler
from avsep.deep.model import DeepConfig, DeepSeparator, build_separator
from avsep.deep.spectral import DeepAudio, LogWarp
from avsep.resume import resume_training_state, save_training_state

__all__ = ["train_deep", "batch_loss", "masks_of", "batch_sdr"]


def batch_loss(model: DeepSeparator, batch: MixBatch, target: str) -> torch.Tensor:
    """The loss of one batch.

    - ``ratio``: L1 between the sigmoid and the clamped ratio mask, and ``binary``: BCE,
      both on the log grid, every source's error weighted by its mixture's
      log(1 + |mixture|) (Sound of Pixels);
    - ``psa``: the mask warped back to the linear grid, times the mixture's magnitude,
      against the phase-sensitive target ``|S| cos(angle S - angle X)``, scored per source
      as ``10 log10(|error|^2 / |S|^2)``: the negative spectral SDR in dB, averaged over
      sources. It weights bins by their energy, as SDR does.
    """
    logits = model.source_logits(batch.logmag, batch.visual)
    if target == "psa":
        return _psa_loss(model, logits, batch)
    if target == "ratio":
        err = (torch.sigmoid(logits) - batch.target).abs()
    else:
        err = F.binary_cross_entropy_with_logits(logits, batch.target, reduction="none")
    S = err.shape[0] // batch.weight.shape[0]
    return (err.view(-1, S, *err.shape[1:]) * batch.weight[:, None]).sum() / (S * batch.weight.sum())


def _linear_masks(model: DeepSeparator, logits: torch.Tensor) -> torch.Tensor:
    """The network's log-grid logits ``(N, n_log, T)`` as masks on its linear grid ``(N, n_lin, T)``."""
    warp = LogWarp(model.audio.n_lin, model.audio.log_bins).to(logits.device)
    return warp.unwarp(torch.sigmoid(logits)).clamp(0.0, 1.0)


def _psa_loss(model: DeepSeparator, logits: torch.Tensor, batch: MixBatch) -> torch.Tensor:
    shape = batch.sources.shape  # (B, S, n_lin, T)
    estimate = _linear_masks(model, logits).view(shape) * batch.mixture.abs()[:, None]
    err = ((estimate - batch.target.view(shape)) ** 2).sum((-2, -1))
    ref = (batch.sources.abs() ** 2).sum((-2, -1))
    return (10 * torch.log10((err + 1e-6) / (ref + 1e-6))).mean()


def masks_of(model: DeepSeparator, logmag: torch.Tensor, visual: torch.Tensor, n_sources: int,
             normalize: bool) -> torch.Tensor:
    """Masks on the model's linear grid ``(B, n_sources, n_lin, T)``: ``logmag`` once per
    mixture, ``visual`` ``n_sources`` consecutive rows per mixture; with ``normalize`` they
    sum to one."""
    m = _linear_masks(model, model.source_logits(logmag, visual))
    m = m.reshape(-1, n_sources, *m.shape[1:])
    if normalize and n_sources > 1:
        total = m.sum(dim=1, keepdim=True)
        m = torch.where(total > 1e-6, m / total.clamp_min(1e-6), torch.full_like(m, 1.0 / n_sources))
    return m


def batch_sdr(masks: torch.Tensor, mixture: torch.Tensor, sources: torch.Tensor, audio: DeepAudio) -> np.ndarray:
    """Plain SDR (dB) of each masked source against its true one, in the time domain:
    ``10 log10(|s|^2 / |s - s_hat|^2)``; ``(B, 2)``."""
    from avsep.transforms import stft_window

    cfg = audio.stft
    window = stft_window(cfg).to(mixture.device)
    n = (mixture.shape[-1] - 1) * cfg.hop_length

    def wave(X):
        flat = X.reshape(-1, *X.shape[-2:])
        return torch.istft(flat, cfg.n_fft, cfg.hop_length, window=window, center=True, length=n).reshape(
            *X.shape[:-2], n)

    est = wave(masks * mixture[:, None])
    ref = wave(sources)
    num = (ref ** 2).sum(-1)
    den = ((ref - est) ** 2).sum(-1)
    return (10 * torch.log10((num + 1e-10) / (den + 1e-10))).cpu().numpy()


def _schedule(total_steps: int, warmup: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))
    return f


def _to(batch: MixBatch, device: str) -> MixBatch:
    return MixBatch(**{f.name: getattr(batch, f.name).to(device) for f in dataclasses.fields(batch)})


def evaluate(model: DeepSeparator, sampler: MixSampler, pairs, cfg: DeepConfig, device: str,
             chunk: int = 16) -> tuple[float, np.ndarray]:
    """Loss and per-source SDR of the fixed pairs (in chunks, without gradients)."""
    model.eval()
    losses, sdrs = [], []
    with torch.no_grad():
        for k in range(0, len(pairs), chunk):
            part = pairs[k : k + chunk]
            batch = _to(sampler.batch(part), device)
            losses.append(float(batch_loss(model, batch, cfg.target)) * len(part))
            masks = masks_of(model, batch.logmag, batch.visual, 2, cfg.normalize)
            sdrs.append(batch_sdr(masks, batch.mixture, batch.sources, model.audio))
    return sum(losses) / len(pairs), np.concatenate(sdrs)


def train_deep(
    train: DeepClips,
    val: DeepClips,
    cfg: DeepConfig,
    audio: DeepAudio,
    *,
    device: str = "cpu",
    checkpoint: str | Path | None = None,
    initial_state: dict | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[DeepSeparator, pd.DataFrame]:
    """Train the separator; returns it (the best validation epoch's weights, in eval mode)
    with its per-epoch metrics: ``epoch, loss, val_loss, val_sdr, val_sdr_std, lr,
    minutes`` (``minutes``: training time so far, the only column that differs between
    runs).

    Seeded and deterministic on the CPU. With ``checkpoint``, the state after every epoch is
    saved there, and a run that finds a checkpoint of the same configuration and data
    resumes from it.

    Args:
        initial_state: weights to start from (``deep.weights``) instead of random ones.
    """
    from tqdm import tqdm

    if train.label_names != val.label_names:
        raise ValueError(f"train clips name {train.label_names}, val clips {val.label_names}")
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model = build_separator(cfg, audio, len(train.label_names)).to(device)
    if initial_state is not None:
        model.load_state_dict(initial_state)
    sampler = MixSampler(train, audio, target=cfg.target, gain_min=cfg.gain_min, gain_max=cfg.gain_max,
                         eq_db=cfg.eq_db)
    val_sampler = MixSampler(val, audio, target=cfg.target, gain_min=cfg.gain_min, gain_max=cfg.gain_max)
    val_pairs = val_sampler.fixed_pairs(cfg.val_pairs, cfg.seed + 1)
    total = cfg.epochs * cfg.steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _schedule(total, max(1, total // 20)))
    gen = torch.Generator().manual_seed(cfg.seed)
    rows, start_epoch, best, seconds = [], 0, None, 0.0
    fingerprint = repr((dataclasses.asdict(cfg), dataclasses.asdict(audio), train.video_ids, val.video_ids,
                        train.label_names, initial_state is not None))
    state = resume_training_state(checkpoint, fingerprint, model, opt, sched, gen, device=device,
                                  what="deep training", log=log)
    if state is not None:
        rows, start_epoch, best, seconds = state["rows"], state["epoch"], state["best"], state["seconds"]
    bar = tqdm(total=total, initial=start_epoch * cfg.steps_per_epoch, desc="deep", unit="batch",
               disable=not progress)
    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        running = 0.0
        for _ in range(cfg.steps_per_epoch):
            batch = _to(sampler.batch(sampler.draw(gen, cfg.batch_size)), device)
            loss = batch_loss(model, batch, cfg.target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
            bar.update(1)
        val_loss, sdr = evaluate(model, val_sampler, val_pairs, cfg, device)
        seconds += time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": running / cfg.steps_per_epoch, "val_loss": val_loss,
               "val_sdr": float(sdr.mean()), "val_sdr_std": float(sdr.std()), "lr": opt.param_groups[0]["lr"],
               "minutes": seconds / 60}
        rows.append(row)
        if best is None or row["val_sdr"] > best["val_sdr"]:
            best = {"epoch": row["epoch"], "val_sdr": row["val_sdr"],
                    "state": copy.deepcopy({k: v.cpu() for k, v in model.state_dict().items()})}
        bar.set_postfix(loss=f"{row['loss']:.4f}", val_sdr=f"{row['val_sdr']:.2f}")
        if log:
            log(f"epoch {row['epoch']}/{cfg.epochs} loss {row['loss']:.4f} val_loss {val_loss:.4f} "
                f"val_sdr {row['val_sdr']:.2f} dB (sd {row['val_sdr_std']:.2f}) "
                f"({time.perf_counter() - t0:.1f} s, {seconds / 60:.1f} min so far)")
        if checkpoint is not None:
            save_training_state(checkpoint, fingerprint, model, opt, sched, gen, rows=rows, epoch=epoch + 1,
                                best=best, seconds=seconds)
    bar.close()
    if best is not None:
        model.load_state_dict(best["state"])
        if log:
            log(f"kept epoch {best['epoch']} (val SDR {best['val_sdr']:.2f} dB)")
    model.eval()
    return model, pd.DataFrame(rows)
