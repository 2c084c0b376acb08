"""The plan of the demo dataset: its sizes (:class:`DemoSpec`), its videos, the split of
each, and the look of every player.

Each instrument has ``DemoSpec.styles`` visual styles (:func:`instrument_styles`): a drawing
variant, a colour palette, the player's build and clothes, and the instrument's size
relative to the player (:class:`avsep.demo.pictures.Look`). Two styles of each instrument
are held out, one for the validation and one for the test videos (duets included; training
duets take training styles), and each takes a palette and an outfit that no training style of that instrument has. The
splits are :func:`avsep.dataset.assign_splits` of the planned videos under the workflow's
``split`` config, so they are the manifest's.
"""

from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path
from typing import Mapping

import numpy as np

from avsep.dataset import VideoEntry, assign_splits
from avsep.demo.pictures import OUTFITS, PALETTES, SIZE_RANGE, VARIANTS, Look
from avsep.demo.sound import VOICES

__all__ = ["DemoSpec", "DEFAULT_SPLIT", "Style", "instrument_styles", "DemoVideo", "demo_jobs", "duet_pairs", "plan_demo"]


@dataclasses.dataclass(frozen=True)
class DemoSpec:
    """Sizes of the demo dataset (the ``demo`` block of the config; the defaults are the
    schema's)."""

    instruments: tuple[str, ...] = tuple(VOICES)
    videos_per_instrument: int = 6
    seconds: float = 20.0
    duets: int = 3
    fps: float = 10.0
    width: int = 320
    height: int = 240
    sample_rate: int = 44100
    seed: int = 0
    styles: int = 5

    def __post_init__(self):
        unknown = sorted(set(self.instruments) - set(VOICES))
        if unknown:
            raise ValueError(f"demo.instruments: no voice for {unknown}; known: {sorted(VOICES)}")
        if len(set(self.instruments)) < 2 and self.duets:
            raise ValueError("demo.duets needs at least two demo instruments")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"demo frame size must be even for H.264, got {self.width}x{self.height}")
        most = min([len(OUTFITS)] + [len(PALETTES[i]) for i in self.instruments])
        if not 4 <= self.styles <= most:
            raise ValueError(f"demo.styles must be between 4 and {most} (palettes and outfits "
                             f"available), got {self.styles}")


#: The ``split`` block's defaults (config/schema.yaml), for generating outside the workflow.
DEFAULT_SPLIT = {"seed": 0, "val_fraction": 0.2, "test_fraction": 0.2}


@dataclasses.dataclass(frozen=True)
class Style:
    """One visual style of an instrument.

    Attributes:
        instrument: the instrument it draws.
        style: its number, 0 to ``DemoSpec.styles - 1``.
        role: ``"train"``, ``"val"`` or ``"test"``: the split whose videos use it.
        look: what it draws.
    """

    instrument: str
    style: int
    role: str
    look: Look


def instrument_styles(instrument: str, *, count: int, seed: int) -> list[Style]:
    """The ``count`` styles of ``instrument``, seeded by ``seed`` and the instrument's name.

    Every style takes its own palette and its own outfit, so the two held-out styles (one
    ``val``, one ``test``) wear colours and clothes that no ``train`` style of the
    instrument has. The training styles take the drawing variants in turn; a held-out style
    takes one of the variants seen in training. Sizes are drawn in ``SIZE_RANGE``.
    """
    if count < 3:
        raise ValueError(f"an instrument needs at least 3 styles (train, val, test), got {count}")
    rng = np.random.default_rng([seed, zlib.crc32(instrument.encode()), 2])
    palettes, outfits = sorted(PALETTES[instrument]), sorted(OUTFITS)
    if count > min(len(palettes), len(outfits)):
        raise ValueError(f"{instrument}: {count} styles, but only {len(palettes)} palettes and "
                         f"{len(outfits)} outfits to give each its own")
    palette = [palettes[i] for i in rng.permutation(len(palettes))[:count]]
    outfit = [outfits[i] for i in rng.permutation(len(outfits))[:count]]
    order = rng.permutation(count)
    roles = ["train"] * count
    roles[order[0]], roles[order[1]] = "test", "val"
    cycle = rng.permutation(VARIANTS)
    variant = {}
    for j, k in enumerate(k for k in range(count) if roles[k] == "train"):
        variant[k] = int(cycle[j % VARIANTS])
    seen = sorted(set(variant.values()))
    for k in (order[0], order[1]):
        variant[int(k)] = int(rng.choice(seen))
    sizes = rng.uniform(*SIZE_RANGE[instrument], count)
    return [
        Style(instrument, k, roles[k], Look(variant[k], palette[k], outfit[k], round(float(sizes[k]), 2)))
        for k in range(count)
    ]


@dataclasses.dataclass(frozen=True)
class DemoVideo:
    """One video of the demo dataset.

    Attributes:
        rel: path relative to the root, ``solo/<inst>/<id>.mp4`` or ``duet/<a>_<b>/<id>.mp4``.
        instruments: one (solo) or two (duet, left to right).
        split: ``train``, ``val`` or ``test``, as :func:`avsep.dataset.assign_splits` gives it.
        styles: the style of each player, in the order of ``instruments``.
    """

    rel: str
    instruments: tuple[str, ...]
    split: str
    styles: tuple[Style, ...]

    @property
    def video_id(self) -> str:
        return Path(self.rel).stem


def demo_jobs(spec: DemoSpec) -> list[tuple[str, tuple[str, ...]]]:
    """The videos of the demo dataset: (relative path, instruments) pairs."""
    jobs = []
    for inst in spec.instruments:
        for k in range(spec.videos_per_instrument):
            jobs.append((f"solo/{inst}/{inst}-{k:02d}.mp4", (inst,)))
    for k, (a, b) in enumerate(duet_pairs(spec)):
        jobs.append((f"duet/{a}_{b}/duet-{k:02d}.mp4", (a, b)))
    return jobs


def duet_pairs(spec: DemoSpec) -> list[tuple[str, str]]:
    """The instrument pair of each of the ``spec.duets`` duets: every pair once, in a seeded
    order, before any pair comes again, so that each instrument plays in as many different
    pairs as the count allows (the MIML network learns instruments from the training duets,
    :func:`avsep.dataset.assign_duet_splits`); the players' sides are seeded too."""
    rng = np.random.default_rng([spec.seed, 1])
    pairs = [(a, b) for i, a in enumerate(spec.instruments) for b in spec.instruments[i + 1 :]]
    out = []
    while len(out) < spec.duets:
        for i in rng.permutation(len(pairs))[: spec.duets - len(out)]:
            out.append(pairs[i])
    return out


def plan_demo(spec: DemoSpec, split: Mapping[str, float] = DEFAULT_SPLIT) -> list[DemoVideo]:
    """Every demo video with its split and the styles of its players.

    ``split`` holds the ``split`` config (``seed``, ``val_fraction``, ``test_fraction``); the
    splits are :func:`avsep.dataset.assign_splits` of the generated videos, so they are the
    manifest's. A training video of an instrument takes the instrument's training styles in
    turn (videos in id order); validation and test videos (duets included) take its
    held-out ``val`` and ``test`` styles.
    """
    jobs = demo_jobs(spec)
    entries = [
        VideoEntry(Path(rel).stem, Path(rel), "solo" if len(insts) == 1 else "duet", insts) for rel, insts in jobs
    ]
    splits = assign_splits(
        entries, seed=int(split["seed"]), val_fraction=split["val_fraction"], test_fraction=split["test_fraction"]
    )
    styles = {inst: instrument_styles(inst, count=spec.styles, seed=spec.seed) for inst in spec.instruments}
    turn = {inst: 0 for inst in spec.instruments}
    videos = []
    for rel, insts in jobs:  # solo videos of an instrument come in id order
        role = splits[Path(rel).stem]
        chosen = []
        for inst in insts:
            if role == "train":
                train = [s for s in styles[inst] if s.role == "train"]
                chosen.append(train[turn[inst] % len(train)])
                turn[inst] += 1
            else:
                chosen.append(next(s for s in styles[inst] if s.role == role))
        videos.append(DemoVideo(rel, insts, role, tuple(chosen)))
    return videos
