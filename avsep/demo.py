"""The embedded demo dataset: real MP4 videos in the MUSIC layout, generated offline.

The dataset is synthetic and built so that held-out videos are harder than training ones:

- **Looks.** Each instrument has ``DemoSpec.styles`` visual styles (:func:`instrument_styles`):
  a drawing variant, a colour palette, the player's build and clothes, and the instrument's
  size relative to the player (:class:`avsep.pictures.Look`). Two styles of each instrument
  are held out, one for the validation and one for the test videos (duets included), and
  each takes a palette and an outfit that no training style of that instrument has.
- **Scenes.** Every video has its own background: a gradient wall with a texture (stripes,
  checkers or noise), a floor, furniture-like clutter and a vignette, rendered once, and a
  lighting that drifts in brightness and colour temperature over the clip (one lookup table
  per frame). The player stands at a random place and scale (a solo player's sprite is
  0.45-0.95 of the frame height) and moves and breathes in scale over time.
- **Timbre.** Audio is rendered from the General MIDI soundfont that ships inside the
  ``pretty_midi`` wheel (TimGM6mb.sf2) with ``tinysoundfont``, using each instrument's GM
  program, with varied melodies, register, dynamics, tempo and note lengths. Each video is
  then recorded differently (:class:`Recording`): a microphone tilt (first-order low and
  high shelves, up to 6 dB each), a room (RT60 0.1-1.0 s, a wide range of reverberant
  level, a pre-delay), a level and background noise.

The generator knows which videos become validation and test videos: it calls
:func:`avsep.dataset.assign_splits` with the workflow's ``split`` config, and writes the
result to ``<root>/splits.tsv``, which the manifest honours. Beside the videos it writes
``annotations/<video_id>.tsv`` (the instrument boxes it drew, per frame, for training
detectors), ``annotations/styles.tsv`` (the look of every player) and
``annotations/recording.tsv`` (the recording of every player). Videos are H.264 + AAC MP4s
encoded by ffmpeg.

Run ``python -m avsep.demo <root>`` to generate a dataset by hand.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image, ImageDraw
from scipy.io import wavfile
from scipy.signal import butter, fftconvolve, lfilter

from avsep.dataset import STEMS_DIR, VideoEntry, assign_splits
from avsep.files import atomic_dir
from avsep.media import ffmpeg_exe
from avsep.pictures import CANVAS, OUTFITS, PALETTES, SIZE_RANGE, VARIANTS, Look, draw_player_sprite

__all__ = [
    "InstrumentVoice",
    "VOICES",
    "DemoSpec",
    "DEFAULT_SPLIT",
    "Recording",
    "draw_recording",
    "apply_recording",
    "render_melody",
    "Style",
    "instrument_styles",
    "DemoVideo",
    "plan_demo",
    "generate_demo_dataset",
]


@dataclasses.dataclass(frozen=True)
class InstrumentVoice:
    """How the demo plays an instrument.

    Attributes:
        program: General MIDI program, 0-based.
        low, high: playable MIDI note range.
        beats: note lengths to draw from, in beats.
        chord_prob: probability that a note is played as a dyad (guitar, accordion).
    """

    program: int
    low: int
    high: int
    beats: tuple[float, ...]
    chord_prob: float = 0.0


#: The eight instruments of the reference implementation's MUSIC subset and their GM voices.
VOICES = {
    "accordion": InstrumentVoice(21, 53, 81, (0.5, 1.0, 1.0, 2.0), chord_prob=0.3),
    "acoustic_guitar": InstrumentVoice(24, 40, 76, (0.5, 0.5, 1.0, 1.0), chord_prob=0.35),
    "cello": InstrumentVoice(42, 36, 64, (1.0, 1.0, 2.0, 3.0)),
    "flute": InstrumentVoice(73, 60, 93, (0.25, 0.5, 0.5, 1.0)),
    "saxophone": InstrumentVoice(65, 49, 80, (0.5, 0.5, 1.0, 1.5)),
    "trumpet": InstrumentVoice(56, 55, 82, (0.5, 1.0, 1.0, 1.5)),
    "violin": InstrumentVoice(40, 55, 93, (0.5, 1.0, 1.0, 2.0)),
    "xylophone": InstrumentVoice(13, 65, 96, (0.25, 0.25, 0.5, 0.5)),
}

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10)}



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


def soundfont_path() -> Path:
    """The TimGM6mb.sf2 General MIDI soundfont inside the installed pretty_midi package."""
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pretty_midi's soundfont is missing; reinstall pretty_midi")
    return path


def _compose(voice: InstrumentVoice, seconds: float, rng: np.random.Generator):
    """A random melody as (onset_s, duration_s, key, velocity) tuples."""
    tempo = rng.uniform(70, 150)
    beat = 60.0 / tempo
    scale = _SCALES[rng.choice(list(_SCALES))]
    # A register of up to two octaves inside the instrument's range, different per video.
    span = min(24, voice.high - voice.low)
    base = int(rng.integers(voice.low, voice.high - span + 1))
    tonic = base + int(rng.integers(0, 12))
    pitches = [k for k in range(base, base + span + 1) if (k - tonic) % 12 in scale]
    idx = int(rng.integers(len(pitches)))
    notes, t = [], float(rng.uniform(0, 0.3))
    phrase_vel = rng.uniform(60, 110)
    while t < seconds - 0.2:
        length = float(rng.choice(voice.beats)) * beat
        if rng.random() < 0.08:  # a rest
            t += length
            continue
        idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, len(pitches) - 1))
        if rng.random() < 0.1:
            phrase_vel = rng.uniform(50, 120)
        vel = int(np.clip(phrase_vel + rng.normal(0, 8), 30, 127))
        legato = rng.uniform(0.6, 1.0)
        keys = [pitches[idx]]
        if rng.random() < voice.chord_prob and idx + 2 < len(pitches):
            keys.append(pitches[idx + 2])
        for key in keys:
            notes.append((t, length * legato, key, vel))
        t += length
    return notes


@dataclasses.dataclass(frozen=True)
class Recording:
    """How one video's microphone and room colour an instrument.

    Attributes:
        low_db, high_db: gains of the microphone's low and high shelves, in dB.
        crossover_hz: where the two shelves meet, in Hz.
        rt60: reverberation time of the room, in seconds.
        wet_gain: energy of the reverberation relative to the direct sound (amplitude).
        predelay: time from the direct sound to the reverberation, in seconds.
        level: peak of the recorded signal (full scale is 1).
    """

    low_db: float
    high_db: float
    crossover_hz: float
    rt60: float
    wet_gain: float
    predelay: float
    level: float


def draw_recording(rng: np.random.Generator) -> Recording:
    """A random microphone tilt (+-6 dB shelves), room (RT60 0.1-1.0 s) and level."""
    rt60 = float(rng.uniform(0.1, 1.0))
    return Recording(
        low_db=float(rng.uniform(-6, 6)),
        high_db=float(rng.uniform(-6, 6)),
        crossover_hz=float(np.exp(rng.uniform(np.log(300), np.log(3000)))),
        rt60=rt60,
        wet_gain=float(rng.uniform(0.03, 0.5)),
        # Larger rooms (longer RT60) put the first reflections further back.
        predelay=float(rng.uniform(0.002, 0.01) + 0.02 * rt60),
        level=float(rng.uniform(0.2, 0.9)),
    )


def apply_recording(
    dry: np.ndarray, *, sample_rate: int, recording: Recording, rng: np.random.Generator
) -> np.ndarray:
    """Record a dry signal: microphone shelves, room reverberation, a slow swell, the level
    and background noise about 35 dB down.

    Args:
        dry: shape ``(nb_samples, nb_channels)``.
        rng: draws the impulse responses, the swell and the noise.

    Returns:
        float32 array of the same shape, peak below 1.
    """
    dry = np.asarray(dry, dtype=np.float64)
    n = dry.shape[0]
    # First-order shelves: the low-passed part and its complement, each with its own gain.
    b, a = butter(1, recording.crossover_hz, fs=sample_rate)
    low = lfilter(b, a, dry, axis=0)
    tilted = 10 ** (recording.low_db / 20) * low + 10 ** (recording.high_db / 20) * (dry - low)
    # The room: direct sound, then decaying noise (60 dB down after rt60) per channel.
    delay = int(recording.predelay * sample_rate)
    t = np.arange(int(recording.rt60 * sample_rate)) / sample_rate
    out = np.empty_like(tilted)
    for ch in range(dry.shape[1]):
        tail = rng.standard_normal(t.size) * np.exp(-6.9 * t / recording.rt60)
        tail *= recording.wet_gain / np.sqrt(np.sum(tail**2))
        ir = np.concatenate([[1.0], np.zeros(delay), tail])
        out[:, ch] = fftconvolve(tilted[:, ch], ir)[:n]
    swell = 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.02, 0.1) * np.arange(n) / sample_rate + rng.uniform(0, 6.3))
    out *= swell[:, None]
    peak = np.max(np.abs(out)) or 1.0
    out *= recording.level / peak
    rms = np.sqrt(np.mean(out**2)) or 1e-3
    out += rng.standard_normal(out.shape) * rms * 10 ** (-rng.uniform(30, 40) / 20)
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def render_melody(
    instrument: str,
    seconds: float,
    *,
    sample_rate: int,
    rng: np.random.Generator,
    recording: Recording | None = None,
) -> np.ndarray:
    """Render a random melody of ``instrument`` and record it (:func:`apply_recording`).

    Args:
        recording: the microphone and room; drawn from ``rng`` when ``None``. The melody is
            drawn from ``rng`` first, so the same ``rng`` state gives the same melody under
            any recording.

    Returns:
        float32 array, shape ``(nb_samples, 2)``, stereo, peak below 1.
    """
    import tinysoundfont

    voice = VOICES[instrument]
    synth = tinysoundfont.Synth(samplerate=sample_rate)
    sfid = synth.sfload(str(soundfont_path()))
    synth.program_select(0, sfid, 0, voice.program)
    events = []
    for onset, length, key, vel in _compose(voice, seconds, rng):
        events.append((int(onset * sample_rate), 1, key, vel))
        events.append((int((onset + length) * sample_rate), 0, key, 0))
    events.sort()
    n = int(round(seconds * sample_rate))
    chunks, now = [], 0
    for when, is_on, key, vel in events:
        when = min(when, n)
        if when > now:
            chunks.append(np.frombuffer(synth.generate(when - now), dtype=np.float32))
            now = when
        if is_on:
            synth.noteon(0, key, vel)
        else:
            synth.noteoff(0, key)
    if n > now:
        chunks.append(np.frombuffer(synth.generate(n - now), dtype=np.float32))
    dry = np.concatenate(chunks).reshape(-1, 2)
    if recording is None:
        recording = draw_recording(rng)
    return apply_recording(dry, sample_rate=sample_rate, recording=recording, rng=rng)


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
    rng = np.random.default_rng([spec.seed, 1])
    pairs = [(a, b) for i, a in enumerate(spec.instruments) for b in spec.instruments[i + 1 :]]
    for k in range(spec.duets):
        a, b = pairs[int(rng.integers(len(pairs)))]
        jobs.append((f"duet/{a}_{b}/duet-{k:02d}.mp4", (a, b)))
    return jobs


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


def _colour(rng: np.random.Generator, low=30, high=230) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(low, high, 3))


def _texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A wall or floor texture, shape ``(height, width)``, around 0: none, stripes,
    checkers, blotchy or fine noise."""
    kind = int(rng.integers(5))
    yy, xx = np.mgrid[0:height, 0:width]
    amp = rng.uniform(6, 24)
    if kind == 1:
        period = rng.uniform(6, 30)
        angle = rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4])
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
        return amp * np.where(phase % 1.0 < 0.5, 1.0, -1.0)
    if kind == 2:
        cell = int(rng.integers(8, 32))
        return amp * np.where((yy // cell + xx // cell) % 2, 1.0, -1.0)
    if kind == 3:
        coarse = rng.standard_normal((height // 16 + 2, width // 16 + 2))
        blot = Image.fromarray(coarse.astype(np.float32), mode="F").resize((width + 32, height + 32), Image.BILINEAR)
        return amp * np.asarray(blot)[16 : 16 + height, 16 : 16 + width]
    if kind == 4:
        return rng.normal(0, amp / 2, (height, width))
    return np.zeros((height, width))


def _clutter(d: ImageDraw.ImageDraw, width: int, height: int, floor: int, rng: np.random.Generator) -> None:
    """Furniture-like shapes: cabinets, shelves with books, frames, windows, lamps, plants,
    cables."""
    for _ in range(int(rng.integers(3, 9))):
        kind = int(rng.integers(7))
        w = int(rng.integers(max(12, width // 12), max(13, width // 3)))
        h = int(rng.integers(max(20, height // 10), max(21, height // 2)))
        x0, y0 = int(rng.integers(-w // 2, width - w // 2)), int(rng.integers(0, max(1, floor - h // 2)))
        fill, edge = _colour(rng), _colour(rng, 10, 120)
        if kind == 0:  # cabinet standing on the floor, with knobs
            y0 = floor - h
            d.rectangle([x0, y0, x0 + w, floor], fill=fill, outline=edge, width=2)
            for kx in (x0 + w // 3, x0 + 2 * w // 3):
                d.ellipse([kx - 2, y0 + h // 3, kx + 2, y0 + h // 3 + 4], fill=edge)
        elif kind == 1:  # shelf with books
            d.rectangle([x0, y0 + h // 3, x0 + w, y0 + h // 3 + 3], fill=edge)
            x = x0 + 2
            while x < x0 + w - 4:
                bw, bh = int(rng.integers(3, 8)), int(rng.integers(h // 6 + 2, h // 3 + 3))
                d.rectangle([x, y0 + h // 3 - bh, x + bw, y0 + h // 3], fill=_colour(rng))
                x += bw + 1
        elif kind == 2:  # picture frame
            d.rectangle([x0, y0, x0 + w, y0 + h // 2], fill=edge)
            d.rectangle([x0 + 4, y0 + 4, x0 + w - 4, y0 + h // 2 - 4], fill=fill)
        elif kind == 3:  # window
            d.rectangle([x0, y0, x0 + w, y0 + h], fill=_colour(rng, 170, 255), outline=edge, width=3)
            d.line([x0 + w // 2, y0, x0 + w // 2, y0 + h], fill=edge, width=2)
            d.line([x0, y0 + h // 2, x0 + w, y0 + h // 2], fill=edge, width=2)
        elif kind == 4:  # lamp or clock
            r = max(4, min(w, h) // 4)
            d.ellipse([x0, y0, x0 + 2 * r, y0 + 2 * r], fill=fill, outline=edge, width=2)
            if rng.random() < 0.5:
                d.line([x0 + r, y0 + 2 * r, x0 + r, floor], fill=edge, width=2)
        elif kind == 5:  # plant in a pot on the floor
            r = max(5, w // 4)
            cx = x0 + w // 2
            d.rectangle([cx - r // 2, floor - r, cx + r // 2, floor], fill=edge)
            for _ in range(5):
                ox, oy = int(rng.integers(-r, r + 1)), int(rng.integers(-2 * r, -r // 2))
                d.ellipse([cx + ox - r // 2, floor - r + oy - r // 2, cx + ox + r // 2, floor - r + oy + r // 2],
                          fill=(int(rng.integers(20, 80)), int(rng.integers(100, 180)), int(rng.integers(20, 80))))
        else:  # a cable or a moulding line
            d.line([x0, y0, x0 + w, y0 + int(rng.integers(-h, h + 1))], fill=edge, width=int(rng.integers(1, 4)))


def _background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A room: a gradient wall with a texture, a textured floor, clutter and a vignette.

    Returns:
        uint8 array, shape ``(height, width, 3)``.
    """
    yy, xx = np.mgrid[0:height, 0:width]
    yy, xx = yy / height, xx / width
    c1, c2 = (np.array(_colour(rng, 25, 235), dtype=float) for _ in range(2))
    kind = int(rng.integers(4))
    if kind == 0:
        ramp = yy
    elif kind == 1:
        ramp = xx
    elif kind == 2:
        ramp = (xx + yy) / 2
    else:
        ramp = np.clip(np.hypot(xx - rng.uniform(0.2, 0.8), yy - rng.uniform(0.1, 0.5)) * 1.4, 0, 1)
    img = c1 * (1 - ramp[..., None]) + c2 * ramp[..., None]
    img += _texture(height, width, rng)[..., None]
    floor = int(height * rng.uniform(0.62, 0.88))
    floor_img = np.array(_colour(rng, 30, 180), dtype=float) + _texture(height - floor, width, rng)[..., None]
    floor_img *= np.linspace(0.85, 1.1, height - floor)[:, None, None]
    img[floor:] = floor_img
    pic = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    _clutter(ImageDraw.Draw(pic), width, height, floor, rng)
    img = np.asarray(pic, dtype=float)
    if rng.random() < 0.7:
        r2 = (xx - 0.5) ** 2 + (yy - 0.5) ** 2
        img *= (1 - rng.uniform(0.2, 0.9) * r2)[..., None]
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@dataclasses.dataclass
class _Lighting:
    """A slow drift of brightness and colour temperature over a video."""

    exposure: float
    amp: float  # brightness swing, a fraction
    warmth: float  # colour temperature swing: red up and blue down by this fraction
    freqs: tuple[float, float]
    phases: tuple[float, float]

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Lighting:
        return cls(
            exposure=float(rng.uniform(0.75, 1.15)),
            amp=float(rng.uniform(0.03, 0.2)),
            warmth=float(rng.uniform(0.0, 0.12)),
            freqs=tuple(float(f) for f in rng.uniform(0.03, 0.15, 2)),
            phases=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 2)),
        )

    def lut(self, t: float) -> list[int]:
        """The per-channel lookup table (768 entries, R then G then B) of time ``t``."""
        gain = self.exposure * (1 + self.amp * np.sin(2 * np.pi * self.freqs[0] * t + self.phases[0]))
        tone = self.warmth * np.sin(2 * np.pi * self.freqs[1] * t + self.phases[1])
        ramp = np.arange(256.0)
        return np.concatenate(
            [np.clip(ramp * gain * g, 0, 255) for g in (1 + tone, 1.0, 1 - tone)]
        ).astype(int).tolist()


@dataclasses.dataclass
class _Player:
    sprite: Image.Image
    box: tuple[int, int, int, int]
    center: tuple[float, float]  # in frame pixels
    size: float  # sprite side in frame pixels
    drift: np.ndarray  # amplitudes and frequencies of the motion


def _make_player(instrument, look, rng, x_range, width, height, size_range) -> _Player:
    """A player of ``look`` at a random scale (sprite side a fraction ``size_range`` of the
    frame height) and place: inside ``x_range`` (fractions of the width), feet near the
    floor, head in the frame."""
    sprite, box = draw_player_sprite(instrument, look, rng)
    size = height * rng.uniform(*size_range)
    # The figure and its instrument span about 0.6 of the sprite's side.
    margin = 0.3 * size / width
    lo, hi = max(x_range[0], margin), min(x_range[1], 1 - margin)
    cx = rng.uniform(lo, hi) if lo < hi else (x_range[0] + x_range[1]) / 2
    bottom = rng.uniform(0.85, 1.04) * height
    cy = max(bottom - size / 2, size / 2 - 0.04 * height)
    drift = np.concatenate([rng.uniform(0.01, 0.05, 2), rng.uniform(0.05, 0.25, 3), rng.uniform(0, 6.3, 3)])
    return _Player(sprite, box, (cx * width, cy), size, drift)


def _place(player: _Player, t: float, width: int, height: int):
    """Where the player is drawn at time ``t``: (resized sprite, top-left, box in frame)."""
    ax, ay, fx, fy, fs, px, py, ps = player.drift
    scale = 1.0 + 0.08 * np.sin(2 * np.pi * fs * t + ps)
    side = max(8, int(round(player.size * scale)))
    cx = player.center[0] + ax * width * np.sin(2 * np.pi * fx * t + px)
    cy = player.center[1] + ay * height * np.sin(2 * np.pi * fy * t + py)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    k = side / CANVAS
    x1, y1, x2, y2 = player.box
    box = (
        max(0, x0 + x1 * k), max(0, y0 + y1 * k), min(width, x0 + x2 * k), min(height, y0 + y2 * k)
    )
    return player.sprite.resize((side, side), Image.BILINEAR), (x0, y0), box


def _write_video(
    path: Path, frames: list[np.ndarray], audio: np.ndarray, *, fps: float, sample_rate: int, tmp: Path
) -> None:
    """Encode RGB frames and stereo audio into an H.264 + AAC MP4."""
    wav = tmp / f"{path.stem}.wav"
    sf.write(wav, audio, sample_rate, subtype="FLOAT")
    height, width = frames[0].shape[:2]
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:",
        "-i", str(wav),
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-threads", "1",
        "-c:a", "aac", "-b:a", "128k",
        "-shortest", "-fflags", "+bitexact", "-map_metadata", "-1", "-movflags", "+faststart",
        str(path),
    ]
    proc = subprocess.run(cmd, input=np.stack(frames).tobytes(), capture_output=True)
    wav.unlink()
    if proc.returncode:
        raise RuntimeError(f"ffmpeg could not encode {path}: {proc.stderr.decode(errors='replace')}")


#: Columns of ``annotations/recording.tsv``.
RECORDING_COLUMNS = ["video_id", "instrument"] + [f.name for f in dataclasses.fields(Recording)]


def _render_video(job: tuple) -> list[dict]:
    """Render one demo video (solo or duet); returns its rows of ``recording.tsv``."""
    root, video, spec = job
    rng = np.random.default_rng([spec.seed, zlib.crc32(video.rel.encode())])
    duet = len(video.instruments) == 2
    width, height, fps = spec.width, spec.height, spec.fps
    # A duet's players share the room and the microphone, each at their own level.
    room = draw_recording(rng)
    recordings = [room] + [dataclasses.replace(room, level=float(rng.uniform(0.2, 0.9))) for _ in video.instruments[1:]]
    parts = [render_melody(inst, spec.seconds, sample_rate=spec.sample_rate, rng=rng, recording=rec)
             * (0.6 if duet else 1.0) for inst, rec in zip(video.instruments, recordings)]
    audio = sum(parts)
    looks = [s.look for s in video.styles]
    if duet:
        x_ranges = [(0.2, 0.3), (0.7, 0.8)]
        players = [_make_player(i, look, rng, xr, width, height, (0.45, 0.65))
                   for i, look, xr in zip(video.instruments, looks, x_ranges)]
    else:
        players = [_make_player(video.instruments[0], looks[0], rng, (0.2, 0.8), width, height, (0.45, 0.95))]
    background = Image.fromarray(_background(width, height, rng)).convert("RGBA")
    lighting = _Lighting.draw(rng)
    n_frames = int(round(spec.seconds * fps))
    frames, boxes = [], []
    for i in range(n_frames):
        t = i / fps
        frame = background.copy()
        for inst, player in zip(video.instruments, players):
            sprite, xy, box = _place(player, t, width, height)
            frame.alpha_composite(sprite, dest=(max(0, xy[0]), max(0, xy[1])),
                                  source=(max(0, -xy[0]), max(0, -xy[1])))
            boxes.append((i, round(t, 4), inst, *(round(float(v), 1) for v in box)))
        frames.append(np.asarray(frame.convert("RGB").point(lighting.lut(t))))
    out = Path(root) / video.rel
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        _write_video(out, frames, audio, fps=fps, sample_rate=spec.sample_rate, tmp=Path(tmp))
    if duet:  # the true stems, which sum to the duet's audio (before its AAC encoding)
        stem_dir = Path(root) / STEMS_DIR / out.stem
        stem_dir.mkdir(parents=True, exist_ok=True)
        for inst, part in zip(video.instruments, parts):
            # scipy's plain float WAV: libsndfile's PEAK chunk would hold the write time.
            wavfile.write(stem_dir / f"{inst}.wav", spec.sample_rate, np.asarray(part, np.float32))
    ann = Path(root) / "annotations" / f"{out.stem}.tsv"
    ann.parent.mkdir(parents=True, exist_ok=True)
    lines = ["frame_index\ttime\tinstrument\tx1\ty1\tx2\ty2"] + ["\t".join(map(str, b)) for b in boxes]
    ann.write_text("\n".join(lines) + "\n")
    return [
        {"video_id": video.video_id, "instrument": inst,
         **{k: round(v, 4) for k, v in dataclasses.asdict(rec).items()}}
        for inst, rec in zip(video.instruments, recordings)
    ]


#: Columns of ``annotations/styles.tsv``.
STYLE_COLUMNS = ["video_id", "instrument", "style", "split", "variant", "palette", "outfit", "size"]


def _style_table(videos: Sequence[DemoVideo]) -> pd.DataFrame:
    rows = [
        {"video_id": v.video_id, "instrument": s.instrument, "style": s.style, "split": v.split,
         "variant": s.look.variant, "palette": s.look.palette, "outfit": s.look.outfit, "size": s.look.size}
        for v in videos
        for s in v.styles
    ]
    return pd.DataFrame(rows, columns=STYLE_COLUMNS)


def generate_demo_dataset(
    root: str | Path,
    spec: DemoSpec,
    *,
    split: Mapping[str, float] = DEFAULT_SPLIT,
    workers: int = 1,
    progress=None,
) -> Path:
    """Generate the demo dataset into ``root`` (written whole, then moved into place).

    Besides the videos and their box annotations, writes ``splits.tsv`` (``video_id``,
    ``split`` of every video), ``annotations/styles.tsv`` (``STYLE_COLUMNS``, one row per
    player) and ``annotations/recording.tsv`` (``RECORDING_COLUMNS``, one row per player).

    Args:
        root: destination folder; replaced if it exists.
        spec: sizes and seed.
        split: the ``split`` config (``seed``, ``val_fraction``, ``test_fraction``) that
            decides which videos are held out, and so which take the held-out styles.
        workers: processes rendering videos in parallel.
        progress: optional callable ``(done, total, rel_path)`` called after each video.

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    videos = plan_demo(spec, split)
    recordings = []
    with atomic_dir(root) as tmp:
        args = [(str(tmp), video, spec) for video in videos]
        if workers > 1:
            with concurrent.futures.ProcessPoolExecutor(workers) as pool:
                for done, (video, rows) in enumerate(zip(videos, pool.map(_render_video, args)), 1):
                    recordings += rows
                    if progress:
                        progress(done, len(videos), video.rel)
        else:
            for done, a in enumerate(args, 1):
                recordings += _render_video(a)
                if progress:
                    progress(done, len(videos), a[1].rel)
        splits = pd.DataFrame({"video_id": [v.video_id for v in videos], "split": [v.split for v in videos]})
        splits.to_csv(tmp / "splits.tsv", sep="\t", index=False, lineterminator="\n")
        (tmp / "annotations").mkdir(exist_ok=True)
        _style_table(videos).to_csv(tmp / "annotations" / "styles.tsv", sep="\t", index=False, lineterminator="\n")
        pd.DataFrame(recordings, columns=RECORDING_COLUMNS).to_csv(
            tmp / "annotations" / "recording.tsv", sep="\t", index=False, lineterminator="\n"
        )
    return root


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="destination folder")
    for field in dataclasses.fields(DemoSpec):
        if field.name != "instruments":
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default)
    parser.add_argument("--instruments", nargs="+", default=list(VOICES))
    parser.add_argument("--split-seed", type=int, default=DEFAULT_SPLIT["seed"])
    parser.add_argument("--val-fraction", type=float, default=DEFAULT_SPLIT["val_fraction"])
    parser.add_argument("--test-fraction", type=float, default=DEFAULT_SPLIT["test_fraction"])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = vars(parser.parse_args(argv))
    root, workers = args.pop("root"), args.pop("workers")
    split = {"seed": args.pop("split_seed"), "val_fraction": args.pop("val_fraction"),
             "test_fraction": args.pop("test_fraction")}
    spec = DemoSpec(**{**args, "instruments": tuple(args["instruments"])})
    generate_demo_dataset(
        root, spec, split=split, workers=workers,
        progress=lambda d, n, rel: print(f"[{d}/{n}] {rel}", file=sys.stderr),
    )


if __name__ == "__main__":
    main()
