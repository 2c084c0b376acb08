"""The ``av`` localization maps: an audio-visual correspondence head, trained on the
training solos, that says where in a frame a sound comes from.

- **Embeddings.** The visual side is the vision model's frozen backbone: its last feature
  map, each cell projected by two 1x1 convolutions to :data:`EMBED` dimensions. The audio
  side is a clip's log-mel statistics (:func:`avsep.probe.features.logmel_stats`: band
  means and deviations, the clip scaled to unit RMS), standardised, through a two-layer
  MLP to the same dimensions. Both are L2-normalised, so a cell's score is a cosine.
- **Training** (Arandjelovic & Zisserman 2018, "Objects that Sound", with the max-pooled
  multiple-instance score of the localization work that followed): a frame of a training
  solo and an audio clip of the same video are a positive pair; a frame's score for a clip
  is its best cell's cosine. An InfoNCE loss over a batch, in both directions, pushes a
  pair's score above the frame's (or the clip's) scores with the batch's other videos. The
  folder labels are used only to drop same-instrument pairs from the negatives. Each step
  draws its videos, frames and clips from a seeded generator; the validation solos' loss
  picks the epoch kept.
- **Maps.** For an instrument of a mixture or duet, its separated track (from
  ``localization.separator``) is cut into a clip around each frame's time and embedded; the
  map is the cosine with every cell, clipped to [0, 1] and upsampled to the frame. An
  instrument the separator returned no track for (vision did not name it) is embedded as
  the mean of its training clips' embeddings: the map then asks where something that sounds
  like it is, which the NSA of an absent instrument scores.
"""

from __future__ import annotations

import copy
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from avsep.errors import InputError

__all__ = ["EMBED", "CorrespondenceHead", "audio_features", "train_correspondence", "av_maps",
           "save_correspondence", "load_correspondence"]

#: Dimensions of the shared embedding.
EMBED = 128


class CorrespondenceHead(nn.Module):
    """The two projections into the shared space (see the module)."""

    def __init__(self, visual_dim: int, audio_dim: int, *, hidden: int = 256, embed: int = EMBED):
        super().__init__()
        self.visual = nn.Conv2d(visual_dim, embed, 1)
        self.audio = nn.Sequential(nn.Linear(audio_dim, hidden), nn.ReLU(), nn.Linear(hidden, embed))
        self.register_buffer("audio_mean", torch.zeros(audio_dim))
        self.register_buffer("audio_std", torch.ones(audio_dim))
        self.log_scale = nn.Parameter(torch.tensor(float(np.log(10.0))))
        self.bias = nn.Parameter(torch.tensor(-5.0))
        #: trained on box cells: its maps are the cells' probabilities (else cosines).
        self.boxes = False

    def logits(self, cos: torch.Tensor) -> torch.Tensor:
        """A cell's logit of showing the sound's source, from its cosine."""
        return cos * self.log_scale.exp() + self.bias

    def embed_audio(self, feats: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.audio((feats - self.audio_mean) / self.audio_std), dim=-1)

    def embed_cells(self, maps: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.visual(maps), dim=1)

    def cosines(self, audio: torch.Tensor, cells: torch.Tensor) -> torch.Tensor:
        """Cosines ``(A, N, h, w)`` of audio embeddings ``(A, E)`` with cell embeddings
        ``(N, E, h, w)``."""
        return torch.einsum("ae,nehw->anhw", audio, cells)


def audio_features(wave: np.ndarray, sample_rate: int, times: Sequence[float], seconds: float) -> np.ndarray:
    """The log-mel statistics ``(len(times), 128)`` of the clips of ``seconds`` centred on
    ``times`` (moved inside the track where it is shorter than a clip)."""
    from avsep.probe.features import logmel_stats

    n = int(round(seconds * sample_rate))
    out = []
    for t in times:
        start = int(round((float(t) - seconds / 2) * sample_rate))
        start = max(0, min(start, len(wave) - n))
        out.append(logmel_stats(wave[start : start + n], sample_rate))
    return np.stack(out).astype(np.float32)


def _loss(head: CorrespondenceHead, maps: torch.Tensor, audio: torch.Tensor, labels: torch.Tensor,
          cells: torch.Tensor | None) -> torch.Tensor:
    """The loss of a batch (frame i with clip i, every clip scored against every frame).

    With the frames' box cells (``cells``, bool ``(N, h, w)``): a binary cross-entropy at
    every cell, positive where the clip's instrument is the frame's and the cell is in its
    box. Without: the symmetric InfoNCE
    loss of the frames' best cells, same-label pairs off the diagonal left out of the
    negatives.
    """
    a = head.embed_audio(audio)
    cos = head.cosines(a, head.embed_cells(maps))  # (clips, frames, h, w)
    same = labels[:, None] == labels[None, :]
    if cells is not None:
        target = (same[:, :, None, None] & cells[None]).float()
        return nn.functional.binary_cross_entropy_with_logits(head.logits(cos), target)
    scores = cos.flatten(2).amax(dim=2) * head.log_scale.exp()
    eye = torch.eye(len(labels), dtype=torch.bool)
    scores = scores.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(labels))
    return 0.5 * (nn.functional.cross_entropy(scores, target) + nn.functional.cross_entropy(scores.T, target))


def train_correspondence(
    train: Mapping[str, list],
    val: Mapping[str, list] | None,
    *,
    epochs: int = 10,
    steps_per_epoch: int = 20,
    batch_size: int = 32,
    lr: float = 3e-4,
    weight_decay: float = 0.05,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> tuple[CorrespondenceHead, list[dict], dict]:
    """Train the head on precomputed features.

    Args:
        train, val: per video (lists of equal length): ``maps``, float tensors
            ``(frames, D, h, w)`` of its sampled frames; ``audio``, arrays ``(clips, A)`` of its
            clips' features; ``label``, its instrument index; optionally ``cells``, bool
            arrays ``(frames, h, w)``: the cells inside its instrument's boxes, which
            switch the loss to the cells' (see :func:`_loss`).

    Returns:
        the head of the epoch with the lowest validation loss (the last one without
        validation videos), one history row per epoch (``epoch, loss, val_loss``), and the
        mean embedding of each label's training clips (``prototypes``, ``(L, E)``, the
        labels without clips left at zero).
    """
    n = len(train["maps"])
    if n < 2 or len(set(train["label"])) < 2:
        raise InputError("the audio-visual head needs training solos of at least two instruments")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    visual_dim = train["maps"][0].shape[1]
    all_audio = np.concatenate(train["audio"])
    head = CorrespondenceHead(visual_dim, all_audio.shape[1])
    head.audio_mean.copy_(torch.from_numpy(all_audio.mean(0)))
    head.audio_std.copy_(torch.from_numpy(all_audio.std(0) + 1e-3))
    optimiser = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    labels = np.asarray(train["label"])
    with_boxes = "cells" in train
    head.boxes = with_boxes

    def batch(source, draw):
        """Frames of randomly drawn videos, each with a clip of another video of its
        instrument (its own when it has no other)."""
        lab = np.asarray(source["label"])
        picks = draw.choice(len(lab), size=min(batch_size, len(lab)), replace=False)
        frames = [int(draw.integers(len(source["maps"][v]))) for v in picks]
        maps = torch.stack([source["maps"][v][f] for v, f in zip(picks, frames)])
        cells = (torch.stack([torch.as_tensor(source["cells"][v][f]) for v, f in zip(picks, frames)])
                 if with_boxes else None)
        clips = []
        for v in picks:
            others = np.flatnonzero((lab == lab[v]) & (np.arange(len(lab)) != v))
            u = int(draw.choice(others)) if len(others) else int(v)
            clips.append(source["audio"][u][draw.integers(len(source["audio"][u]))])
        return maps, torch.from_numpy(np.stack(clips)), torch.as_tensor(lab[picks]), cells

    fixed_val = None
    if val is not None and len(val["maps"]) >= 2:
        fixed_val = [batch(val, np.random.default_rng(seed + 1000 + k)) for k in range(4)]
    history, best, best_state = [], None, None
    for epoch in range(1, epochs + 1):
        head.train()
        losses = []
        for _ in range(steps_per_epoch):
            loss = _loss(head, *batch(train, rng))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        head.eval()
        row = {"epoch": epoch, "loss": float(np.mean(losses)), "val_loss": float("nan")}
        if fixed_val:
            with torch.no_grad():
                row["val_loss"] = float(np.mean([float(_loss(head, *b)) for b in fixed_val]))
        key = row["val_loss"] if fixed_val else -epoch
        if best is None or key < best:
            best, best_state = key, copy.deepcopy(head.state_dict())
        history.append(row)
        if log and (epoch == 1 or epoch % max(1, epochs // 5) == 0 or epoch == epochs):
            log(f"epoch {epoch}/{epochs}: loss {row['loss']:.4f} val_loss {row['val_loss']:.4f}")
    head.load_state_dict(best_state)
    head.eval()
    with torch.no_grad():
        embedded = head.embed_audio(torch.from_numpy(all_audio))
    clip_labels = np.concatenate([[lab] * len(a) for lab, a in zip(labels, train["audio"])])
    prototypes = torch.zeros(int(labels.max()) + 1, embedded.shape[1])
    for lab in np.unique(clip_labels):
        prototypes[lab] = nn.functional.normalize(embedded[clip_labels == lab].mean(0), dim=0)
    return head, history, {"prototypes": prototypes}


def av_maps(head: CorrespondenceHead, maps: torch.Tensor, audio: Mapping[int, np.ndarray],
            prototypes: torch.Tensor, n_instruments: int, *, height: int, width: int) -> np.ndarray:
    """``av`` maps ``(n, n_instruments, height, width)`` in [0, 1].

    Args:
        maps: the frames' backbone feature maps ``(n, D, h, w)``.
        audio: per instrument index with a separated track, its clips' features ``(n, A)``,
            one per frame; the others take their prototype.
    """
    from avsep.vision.maps import upsampled

    out = np.zeros((len(maps), n_instruments, height, width), np.float32)
    with torch.no_grad():
        cells = head.embed_cells(maps)
        for k in range(n_instruments):
            if k in audio:
                a = head.embed_audio(torch.from_numpy(np.asarray(audio[k], np.float32)))  # (n, E)
                cos = torch.einsum("ne,nehw->nhw", a, cells)
            else:
                cos = torch.einsum("e,nehw->nhw", prototypes[k], cells)
            heat = torch.sigmoid(head.logits(cos)) if head.boxes else cos.clamp(0, 1)
            out[:, k] = upsampled(heat[:, None], height, width)[:, 0].clamp(0, 1).numpy()
    return out


def save_correspondence(path, head: CorrespondenceHead, *, prototypes: torch.Tensor, label_names: Sequence[str],
                        **settings) -> None:
    from avsep.files import save_torch

    save_torch(path, {"state_dict": head.state_dict(), "visual_dim": head.visual.in_channels,
                      "audio_dim": head.audio[0].in_features, "prototypes": prototypes,
                      "label_names": list(label_names), "boxes": bool(head.boxes), **settings})


def load_correspondence(path, label_names: Sequence[str] | None = None) -> tuple[CorrespondenceHead, dict]:
    """Rebuild a head saved by :func:`save_correspondence`; ``(head, checkpoint)``.

    Raises:
        InputError: its labels differ from ``label_names``.
    """
    from avsep.files import read_checkpoint

    ckpt = read_checkpoint(path, key="localization av model")
    if label_names is not None and list(ckpt["label_names"]) != list(label_names):
        raise InputError(f"{path}: the audio-visual head knows {ckpt['label_names']}, the vision model "
                         f"{list(label_names)}; retrain it (rule train_localization)")
    head = CorrespondenceHead(ckpt["visual_dim"], ckpt["audio_dim"])
    head.load_state_dict(ckpt["state_dict"])
    head.boxes = bool(ckpt["boxes"])
    return head.eval(), ckpt
