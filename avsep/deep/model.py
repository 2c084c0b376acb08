"""The deep separator's networks and checkpoints.

A :class:`DeepSeparator` is a visual encoder and a mask network. The encoder turns what
is seen of one source into a conditioning vector:

- ``vision``: the vision stage's frozen network, through its class probabilities for the
  source's region (for ``halves`` the side's half frame, for the detector its detection),
  a small MLP on top;
- ``cnn``: a small CNN on the region's pixels, trained jointly.

The mask network maps the mixture's log-frequency log-magnitude ``(B, F, T)`` and that
vector to one mask's logits ``(B, F, T)``:

- ``tcn``: a stack of dilated 1-D convolutions over time with the frequency bins as
  channels (the CPU default: it learned fastest per minute on two cores);
- ``unet``: the U-Net of Sound of Pixels over the (frequency, time) image, 7 levels of
  64 base channels at the published size (``config/deep.yaml``).

The vector enters by feature-wise modulation of every block or level (``film``, Perez et
al. 2018), once, tiled and concatenated at the bottleneck (``bottleneck``, as Co-Separation
feeds its visual vector), or as the weights of the network's ``cond_dim`` output maps,
whose weighted sum is the mask (``synthesizer``, Sound of Pixels' audio synthesizer).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from avsep.deep.spectral import DeepAudio
from avsep.errors import InputError

__all__ = ["DeepConfig", "DeepSeparator", "build_separator", "save_separator", "load_separator",
           "check_separator"]

CHECKPOINT_KIND = "avsep.deep"


@dataclasses.dataclass(frozen=True)
class DeepConfig:
    """The ``deep`` block of the config (config/README.md), less its ``audio`` (:class:`DeepAudio`)."""

    network: str = "tcn"
    channels: int = 128
    depth: int = 10
    freq_channels: int = 4
    condition: str = "synthesizer"
    visual: str = "vision"
    cond_dim: int = 16
    image_size: int = 64
    target: str = "psa"
    normalize: bool = True
    epochs: int = 6
    steps_per_epoch: int = 90
    batch_size: int = 16
    lr: float = 6.0e-3
    weight_decay: float = 1.0e-4
    gain_min: float = 0.5
    gain_max: float = 1.5
    eq_db: float = 6.0
    val_pairs: int = 48
    frames_per_video: int = 4
    seed: int = 0

    def __post_init__(self):
        problems = []
        if self.network not in ("tcn", "unet"):
            problems.append(f"deep.network must be tcn or unet, got {self.network!r}")
        if self.condition not in ("film", "bottleneck", "synthesizer"):
            problems.append(f"deep.condition must be film, bottleneck or synthesizer, got {self.condition!r}")
        if self.visual not in ("vision", "cnn"):
            problems.append(f"deep.visual must be vision or cnn, got {self.visual!r}")
        if self.target not in ("ratio", "binary", "psa"):
            problems.append(f"deep.target must be ratio, binary or psa, got {self.target!r}")
        if not 0 < self.gain_min <= self.gain_max:
            problems.append(f"deep.gain_min ({self.gain_min}) must be positive and at most deep.gain_max "
                            f"({self.gain_max})")
        if self.network == "unet" and not 1 <= self.depth <= 8:
            problems.append(f"deep.depth of a unet is its levels, 1 to 8, got {self.depth}")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_config(cls, d: Mapping) -> "DeepConfig":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d})


class FiLM(nn.Module):
    """``gamma * x + beta`` per channel, both from the conditioning vector (gamma around 1)."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.linear = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.linear(cond).chunk(2, dim=1)
        shape = (x.shape[0], -1) + (1,) * (x.dim() - 2)
        return (1 + gamma.view(shape)) * x + beta.view(shape)


def _combine(maps: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """One map: the logits; several: their sum weighted by the conditioning vector."""
    return maps[:, 0] if maps.shape[1] == 1 else torch.einsum("bkft,bk->bft", maps, cond)


def _tiled(cond: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return cond.view(cond.shape[0], -1, *([1] * (like.dim() - 2))).expand(-1, -1, *like.shape[2:])


class _TemporalBlock(nn.Module):
    def __init__(self, channels: int, dilation: int, cond_dim: int, film: bool):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.norm = nn.BatchNorm1d(channels)
        self.film = FiLM(cond_dim, channels) if film else None
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x, cond):
        h = self.norm(self.conv(x))
        if self.film is not None:
            h = self.film(h, cond)
        return x + self.out(F.gelu(h))


class TemporalMaskNet(nn.Module):
    """Dilated residual 1-D convolutions over time (dilations 1, 2, 4, 8, 16, repeated;
    ten blocks see 125 frames, 2.9 s at the default settings)."""

    def __init__(self, n_bins: int, channels: int, depth: int, cond_dim: int, condition: str,
                 freq_channels: int = 0):
        super().__init__()
        self.input_norm = nn.BatchNorm1d(n_bins)
        self.front = None
        if freq_channels:
            # Two convolutions over (log frequency, time): features that move with pitch.
            k = freq_channels
            self.front = nn.Sequential(nn.Conv2d(1, k, (7, 3), padding=(3, 1)), nn.BatchNorm2d(k), nn.GELU(),
                                       nn.Conv2d(k, k, (7, 3), padding=(6, 1), dilation=(2, 1)), nn.BatchNorm2d(k),
                                       nn.GELU())
            # Channels-last weights (and so outputs): with 4 channels, mkldnn's (frequency,
            # time) convolutions and their backward run about a third faster so on CPU.
            self.front.to(memory_format=torch.channels_last)
        self.inp = nn.Conv1d(n_bins * (1 + freq_channels), channels, 1)
        self.blocks = nn.ModuleList(_TemporalBlock(channels, 2 ** (i % 5), cond_dim, condition == "film")
                                    for i in range(depth))
        self.fuse_at = depth // 2 if condition == "bottleneck" else None
        self.fuse = nn.Conv1d(channels + cond_dim, channels, 1) if condition == "bottleneck" else None
        self.maps = cond_dim if condition == "synthesizer" else 1
        self.outp = nn.Conv1d(channels, n_bins * self.maps, 1)

    def features(self, logmag: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """``(B, channels, T)``: the last block's output, before the output convolution."""
        x = self.input_norm(logmag)
        B, Fb, T = x.shape
        if self.front is not None:
            front = self.front(x[:, None])
            x = torch.cat([x, front.contiguous().reshape(B, -1, T)], dim=1)
        x = self.inp(x)
        for i, block in enumerate(self.blocks):
            if i == self.fuse_at:
                x = self.fuse(torch.cat([x, _tiled(cond, x)], dim=1))
            x = block(x, cond)
        return x

    def output_maps(self, logmag: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """``(B, maps, F, T)``: the logits (one map), or the synthesizer's maps (which do not
        depend on ``cond``)."""
        B, Fb, T = logmag.shape
        return self.outp(self.features(logmag, cond)).view(B, self.maps, Fb, T)

    def synthesize(self, logmag: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The synthesizer's logits for ``S`` sources per mixture, ``cond`` ``(B, S, maps)``:
        ``(B * S, F, T)``. The maps' weighted sum is a linear map of the features, so the
        vector first weights the output convolution's kernels, and each source's logits come
        from one ``(F, channels)`` product instead of ``maps`` of them (16x less arithmetic at
        the defaults; equal to weighting :meth:`output_maps` up to rounding, as tested)."""
        B, Fb, T = logmag.shape
        S = cond.shape[1]
        h = self.features(logmag, None)
        weight = self.outp.weight.view(self.maps, Fb, -1)
        w = torch.einsum("bsk,kfc->bsfc", cond, weight).reshape(B * S, Fb, -1)
        bias = (cond @ self.outp.bias.view(self.maps, Fb)).reshape(B * S, Fb, 1)
        return torch.baddbmm(bias, w, h.repeat_interleave(S, dim=0))

    def forward(self, logmag: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        if self.maps > 1:
            return self.synthesize(logmag, cond[:, None])
        return _combine(self.output_maps(logmag, cond), cond)


class UNetMaskNet(nn.Module):
    """The U-Net of Sound of Pixels over ``(1, F, T)``: ``depth`` stride-2 convolutions down
    (channels doubling from ``channels`` up to 8x), transposed convolutions up with skip
    connections; FiLM on every decoder level, or the vector at the bottleneck."""

    def __init__(self, channels: int, depth: int, cond_dim: int, condition: str):
        super().__init__()
        widths = [channels * min(2 ** i, 8) for i in range(depth)]
        self.depth = depth
        self.synthesizer = condition == "synthesizer"
        self.input_norm = nn.BatchNorm2d(1)
        self.down = nn.ModuleList()
        for i, w in enumerate(widths):
            layers = [nn.Conv2d(1 if i == 0 else widths[i - 1], w, 4, 2, 1)]
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.LeakyReLU(0.2))
            self.down.append(nn.Sequential(*layers))
        self.fuse = nn.Conv2d(widths[-1] + cond_dim, widths[-1], 1) if condition == "bottleneck" else None
        self.up, self.films = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(depth)):
            cin = widths[i] if i == depth - 1 else 2 * widths[i]
            last = i == 0
            cout = (cond_dim if condition == "synthesizer" else 1) if last else widths[i - 1]
            layers = [nn.ConvTranspose2d(cin, cout, 4, 2, 1)]
            if not last:
                layers += [nn.BatchNorm2d(cout), nn.ReLU()]
            self.up.append(nn.Sequential(*layers))
            self.films.append(FiLM(cond_dim, cout) if condition == "film" and not last else None)

    def forward(self, logmag: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return _combine(self.output_maps(logmag, cond), cond)

    def synthesize(self, logmag: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The synthesizer's logits for ``S`` sources per mixture, ``cond`` ``(B, S, maps)``:
        ``(B * S, F, T)``, its maps computed once per mixture and weighted per source."""
        maps = self.output_maps(logmag, None)
        return torch.einsum("bkft,bsk->bsft", maps, cond).reshape(-1, *logmag.shape[1:])

    def output_maps(self, logmag: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        B, Fb, T = logmag.shape
        unit = 2 ** self.depth
        pad_f, pad_t = (-Fb) % unit, (-T) % unit
        x = F.pad(self.input_norm(logmag[:, None]), (0, pad_t, 0, pad_f))
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        if self.fuse is not None:
            x = self.fuse(torch.cat([x, _tiled(cond, x)], dim=1))
            skips[-1] = x
        x = skips.pop()
        for k, (layer, film) in enumerate(zip(self.up, self.films)):
            if k > 0:
                x = torch.cat([x, skips.pop()], dim=1)
            x = layer(x)
            if film is not None:
                x = film(x, cond)
        return x[:, :, :Fb, :T]


class VisionVectorEncoder(nn.Module):
    """The vision stage's class probabilities of a region ``(B, L)`` to the conditioning vector."""

    def __init__(self, n_labels: int, cond_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_labels, cond_dim), nn.ReLU(), nn.Linear(cond_dim, cond_dim))

    def forward(self, x):
        return self.net(x)


class RegionCNN(nn.Module):
    """A small CNN on a region's pixels ``(B, 3, S, S)`` (floats in [0, 1]), trained with the
    mask network: four stride-2 convolutions, global pooling, a linear layer."""

    def __init__(self, cond_dim: int, width: int = 16):
        super().__init__()
        layers, cin = [], 3
        for k in range(4):
            cout = width * 2 ** k
            layers += [nn.Conv2d(cin, cout, 3, 2, 1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear(cin, cond_dim)

    def forward(self, x):
        return self.linear(self.features(x - 0.5).mean(dim=(2, 3)))


class DeepSeparator(nn.Module):
    """Visual encoder plus mask network: ``forward(logmag (B, F, T), visual) -> logits (B, F, T)``,
    ``visual`` being ``(B, L)`` probabilities (``vision``) or ``(B, 3, S, S)`` images (``cnn``)."""

    def __init__(self, cfg: DeepConfig, audio: DeepAudio, n_labels: int):
        super().__init__()
        self.cfg, self.audio, self.n_labels = cfg, audio, n_labels
        self.encoder = (VisionVectorEncoder(n_labels, cfg.cond_dim) if cfg.visual == "vision"
                        else RegionCNN(cfg.cond_dim))
        if cfg.network == "tcn":
            self.masknet = TemporalMaskNet(audio.log_bins, cfg.channels, cfg.depth, cfg.cond_dim, cfg.condition,
                                           cfg.freq_channels)
        else:
            self.masknet = UNetMaskNet(cfg.channels, cfg.depth, cfg.cond_dim, cfg.condition)

    def forward(self, logmag: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        return self.masknet(logmag, self.encoder(visual))

    def source_logits(self, logmag: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """The logits of every source of every mixture: ``logmag`` ``(B, F, T)`` once per
        mixture, ``visual`` ``B * S`` rows, a mixture's sources consecutive; returns
        ``(B * S, F, T)``. With the synthesizer the network runs once per mixture (its maps
        do not depend on what is seen), otherwise once per source."""
        cond = self.encoder(visual)
        S = cond.shape[0] // logmag.shape[0]
        if self.cfg.condition == "synthesizer":
            return self.masknet.synthesize(logmag, cond.view(logmag.shape[0], S, -1))
        return self.masknet(logmag.repeat_interleave(S, dim=0), cond)


def build_separator(cfg: DeepConfig, audio: DeepAudio, n_labels: int) -> DeepSeparator:
    return DeepSeparator(cfg, audio, n_labels)


def save_separator(path: str | Path, model: DeepSeparator, label_names: Sequence[str], **extra) -> None:
    """Write a checkpoint that :func:`load_separator` reads: the weights, the configuration,
    the model's audio settings and the instruments it was trained on."""
    from avsep.files import save_torch

    save_torch(path, {"kind": CHECKPOINT_KIND, "config": dataclasses.asdict(model.cfg),
                      "audio": dataclasses.asdict(model.audio), "label_names": list(label_names),
                      "state_dict": model.state_dict(), **extra})


def check_separator(checkpoint: dict, *, key: str, cfg: DeepConfig | None = None,
                    label_names: Sequence[str] | None = None) -> None:
    """Refuse a checkpoint that is not ours, was trained on other instruments than
    ``label_names``, or whose network differs from ``cfg`` (where given), naming what differs."""
    if not isinstance(checkpoint, dict) or checkpoint.get("kind") != CHECKPOINT_KIND:
        raise InputError(f"{key}: not a checkpoint of avsep's deep separator (save_separator writes them)")
    if label_names is not None and list(checkpoint["label_names"]) != list(label_names):
        raise InputError(f"{key}: trained on {', '.join(checkpoint['label_names'])}; this dataset has "
                         f"{', '.join(label_names)}")
    if cfg is not None:
        shaped = ("network", "channels", "depth", "freq_channels", "condition", "visual", "cond_dim", "image_size")
        differs = [f"{k} {checkpoint['config'][k]!r} (config: {getattr(cfg, k)!r})" for k in shaped
                   if checkpoint["config"].get(k) != getattr(cfg, k)]
        if differs:
            raise InputError(f"{key}: the checkpoint's network differs from deep.*: {'; '.join(differs)}")


def load_separator(path: str | Path, *, key: str = "deep.weights", cfg: DeepConfig | None = None,
                   label_names: Sequence[str] | None = None, device: str = "cpu") -> tuple[DeepSeparator, dict]:
    """A separator from :func:`save_separator`'s file, checked (:func:`check_separator`);
    returns the model in eval mode and the checkpoint."""
    from avsep.files import read_checkpoint

    checkpoint = read_checkpoint(path, key)
    check_separator(checkpoint, key=key, cfg=cfg, label_names=label_names)
    model = build_separator(DeepConfig(**checkpoint["config"]), DeepAudio(**checkpoint["audio"]),
                            len(checkpoint["label_names"]))
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise InputError(f"{key}: {path} does not fit the network it names: {' '.join(first[:3])}") from None
    return model.to(device).eval(), checkpoint
