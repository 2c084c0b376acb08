"""Training the deep MIML network (Gao, Feris & Grauman, ECCV 2018, Sec. 3.2) on weakly
labelled bags: Adam with a learning-rate schedule, binary cross-entropy per label, seeded,
and resumable from a per-epoch checkpoint."""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from avsep.resume import resume_training_state, save_training_state
from avsep.miml.bags import Bags
from avsep.miml.metrics import bag_accuracy, mean_average_precision
from avsep.miml.model import MIMLConfig, MIMLNet
from avsep.miml.predict import relation_maps

__all__ = ["train_miml"]


def _lr_lambda(schedule: str, epochs: int) -> Callable[[int], float]:
    if schedule == "cosine":
        return lambda e: 0.5 * (1 + math.cos(math.pi * e / max(1, epochs)))
    if schedule == "step":
        return lambda e: 0.1 ** (e // max(1, epochs // 3))
    if schedule == "none":
        return lambda e: 1.0
    raise ValueError(f"miml.lr_schedule must be cosine, step or none, got {schedule!r}")


def train_miml(
    train: Bags,
    val: Bags,
    cfg: MIMLConfig,
    *,
    device: str = "cpu",
    checkpoint: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> tuple[MIMLNet, pd.DataFrame]:
    """Train the network; returns it with its per-epoch metrics.

    Seeded and deterministic on the CPU. With ``checkpoint``, the state after every epoch
    is saved there, and a run that finds a checkpoint of the same configuration resumes
    from it (an interrupted job loses at most one epoch).

    Returns:
        model (in eval mode) and a table with columns ``epoch, loss, train_acc, val_acc,
        val_map, lr`` (times go to the log, so that the table is the same from run to run).
    """
    from tqdm import tqdm

    if len(train.bags) == 0:
        raise ValueError("no training bags: every training chunk is silent or there are no training videos")
    torch.manual_seed(cfg.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    L, F = train.targets.shape[1], train.bags.shape[2]
    model = MIMLNet(F, L, cfg.hidden, cfg.sub_concepts, cfg.dropout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(cfg.lr_schedule, cfg.epochs))
    loss_fn = nn.BCELoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    rows, start_epoch = [], 0
    fingerprint = repr((dataclasses.asdict(cfg), L, F, len(train.bags), train.label_names))
    state = resume_training_state(checkpoint, fingerprint, model, opt, sched, gen, device=device,
                                  what="MIML training", log=log)
    if state is not None:
        rows, start_epoch = state["rows"], state["epoch"]
    X = torch.from_numpy(train.bags)
    Y = torch.from_numpy(train.targets.astype(np.float32))
    bar = tqdm(range(start_epoch, cfg.epochs), desc="MIML", disable=not progress, unit="epoch",
               initial=start_epoch, total=cfg.epochs)
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        order = torch.randperm(len(X), generator=gen)
        total = 0.0
        for i in range(0, len(X), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples; the last odd bag waits for next epoch
                continue
            scores, _ = model(X[idx].to(device))
            loss = loss_fn(scores, Y[idx].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        sched.step()
        train_scores, _ = relation_maps(model, train.bags, device)
        val_scores, _ = relation_maps(model, val.bags, device)
        seconds = time.perf_counter() - t0
        row = {
            "epoch": epoch + 1,
            "loss": total / len(X),
            "train_acc": bag_accuracy(train_scores, train.targets, cfg.threshold),
            "val_acc": bag_accuracy(val_scores, val.targets, cfg.threshold) if len(val.bags) else float("nan"),
            "val_map": mean_average_precision(val_scores, val.targets) if len(val.bags) else float("nan"),
            "lr": opt.param_groups[0]["lr"],
        }
        rows.append(row)
        bar.set_postfix(loss=f"{row['loss']:.3f}", val_acc=f"{row['val_acc']:.3f}")
        if log:
            log(f"epoch {row['epoch']}/{cfg.epochs} loss {row['loss']:.4f} train_acc {row['train_acc']:.3f} "
                f"val_acc {row['val_acc']:.3f} val_map {row['val_map']:.3f} ({seconds:.2f} s)")
        if checkpoint is not None:
            save_training_state(checkpoint, fingerprint, model, opt, sched, gen, rows=rows, epoch=epoch + 1)
    model.eval()
    return model, pd.DataFrame(rows)
