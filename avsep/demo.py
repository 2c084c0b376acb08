"""The embedded demo dataset: real MP4 videos in the MUSIC layout, generated offline.

Audio is rendered from the General MIDI soundfont that ships inside the ``pretty_midi``
wheel (TimGM6mb.sf2) with ``tinysoundfont``, using each instrument's GM program, with varied
melodies, register, dynamics, tempo and note lengths, then mild room reverberation and
noise. Frames show a drawn player with the instrument (:mod:`avsep.pictures`) moving and
changing scale over time on a varied background. Videos are H.264 + AAC MP4s encoded by
ffmpeg. The instrument boxes the generator drew are written beside the dataset
(``annotations/<video_id>.tsv``) for training detectors.

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
from typing import Sequence

import numpy as np
import soundfile as sf
from PIL import Image
from scipy.signal import fftconvolve

from avsep.files import atomic_dir
from avsep.media import ffmpeg_exe
from avsep.pictures import CANVAS, draw_player_sprite

__all__ = ["InstrumentVoice", "VOICES", "DemoSpec", "render_melody", "generate_demo_dataset"]


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


#: The eight instruments of the seed's MUSIC subset and their GM voices.
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
    """Sizes of the demo dataset (the ``demo`` block of the config)."""

    instruments: tuple[str, ...] = tuple(VOICES)
    videos_per_instrument: int = 5
    seconds: float = 20.0
    duets: int = 2
    fps: float = 10.0
    width: int = 320
    height: int = 240
    sample_rate: int = 44100
    seed: int = 0

    def __post_init__(self):
        unknown = sorted(set(self.instruments) - set(VOICES))
        if unknown:
            raise ValueError(f"demo.instruments: no voice for {unknown}; known: {sorted(VOICES)}")
        if len(set(self.instruments)) < 2 and self.duets:
            raise ValueError("demo.duets needs at least two demo instruments")
        if self.width % 2 or self.height % 2:
            raise ValueError(f"demo frame size must be even for H.264, got {self.width}x{self.height}")


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


def render_melody(
    instrument: str, seconds: float, *, sample_rate: int, rng: np.random.Generator
) -> np.ndarray:
    """Render a random melody of ``instrument`` with reverberation and noise.

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
    dry = np.concatenate(chunks).reshape(-1, 2).astype(np.float64)
    # Mild room: a decaying-noise impulse response per channel (RT60 0.2-0.6 s).
    rt60 = rng.uniform(0.2, 0.6)
    t = np.arange(int(rt60 * sample_rate)) / sample_rate
    wet_gain = rng.uniform(0.08, 0.25)
    out = np.empty_like(dry)
    for ch in range(2):
        ir = rng.standard_normal(t.size) * np.exp(-6.9 * t / rt60)
        ir *= wet_gain / np.sqrt(np.sum(ir**2))
        ir[0] = 1.0
        out[:, ch] = fftconvolve(dry[:, ch], ir)[:n]
    # A slow swell over the clip, then a random level.
    swell = 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.02, 0.1) * np.arange(n) / sample_rate + rng.uniform(0, 6.3))
    out *= swell[:, None]
    peak = np.max(np.abs(out)) or 1.0
    out *= rng.uniform(0.35, 0.9) / peak
    # Background noise about 35 dB below the signal.
    rms = np.sqrt(np.mean(out**2)) or 1e-3
    out += rng.standard_normal(out.shape) * rms * 10 ** (-rng.uniform(30, 40) / 20)
    return np.clip(out, -0.99, 0.99).astype(np.float32)


def _background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A room-like backdrop: a two-colour gradient wall, a floor band and a few shapes."""
    c1, c2 = rng.integers(40, 230, (2, 3))
    ramp = np.linspace(0, 1, height if rng.random() < 0.5 else width)
    grad = c1[None, :] * (1 - ramp[:, None]) + c2[None, :] * ramp[:, None]
    img = np.broadcast_to(grad[:, None, :] if grad.shape[0] == height else grad[None, :, :], (height, width, 3)).copy()
    for _ in range(int(rng.integers(1, 5))):
        x0, y0 = int(rng.integers(0, width - 20)), int(rng.integers(0, height // 2))
        w, h = int(rng.integers(20, width // 3)), int(rng.integers(20, height // 2))
        img[y0 : y0 + h, x0 : x0 + w] = rng.integers(30, 230, 3)
    floor = int(height * rng.uniform(0.7, 0.85))
    img[floor:] = rng.integers(30, 160, 3)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@dataclasses.dataclass
class _Player:
    sprite: Image.Image
    box: tuple[int, int, int, int]
    center: tuple[float, float]  # in frame pixels
    size: float  # sprite side in frame pixels
    drift: np.ndarray  # amplitudes and frequencies of the motion


def _make_player(instrument, rng, x_range, width, height, size_frac) -> _Player:
    sprite, box = draw_player_sprite(instrument, rng)
    size = height * size_frac * rng.uniform(0.85, 1.1)
    cx = rng.uniform(*x_range) * width
    cy = height * rng.uniform(0.5, 0.6)
    drift = np.concatenate([rng.uniform(0.02, 0.06, 2), rng.uniform(0.05, 0.25, 3), rng.uniform(0, 6.3, 3)])
    return _Player(sprite, box, (cx, cy), size, drift)


def _place(player: _Player, t: float, width: int, height: int):
    """Where the player is drawn at time ``t``: (resized sprite, top-left, box in frame)."""
    ax, ay, fx, fy, fs, px, py, ps = player.drift
    scale = 1.0 + 0.12 * np.sin(2 * np.pi * fs * t + ps)
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


def _render_video(job: tuple) -> str:
    """Render one demo video (solo or duet); returns its relative path."""
    root, rel, instruments, spec = job
    rng = np.random.default_rng([spec.seed, zlib.crc32(rel.encode())])
    duet = len(instruments) == 2
    width, height, fps = spec.width, spec.height, spec.fps
    audio = sum(
        render_melody(inst, spec.seconds, sample_rate=spec.sample_rate, rng=rng) * (0.6 if duet else 1.0)
        for inst in instruments
    )
    if duet:
        x_ranges = [(0.22, 0.28), (0.72, 0.78)]
        players = [_make_player(i, rng, xr, width, height, 0.62) for i, xr in zip(instruments, x_ranges)]
    else:
        players = [_make_player(instruments[0], rng, (0.35, 0.65), width, height, 0.85)]
    background = Image.fromarray(_background(width, height, rng)).convert("RGBA")
    n_frames = int(round(spec.seconds * fps))
    frames, boxes = [], []
    for i in range(n_frames):
        t = i / fps
        frame = background.copy()
        for inst, player in zip(instruments, players):
            sprite, xy, box = _place(player, t, width, height)
            frame.alpha_composite(sprite, dest=(max(0, xy[0]), max(0, xy[1])),
                                  source=(max(0, -xy[0]), max(0, -xy[1])))
            boxes.append((i, round(t, 4), inst, *(round(float(v), 1) for v in box)))
        frames.append(np.asarray(frame.convert("RGB")))
    out = Path(root) / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        _write_video(out, frames, audio, fps=fps, sample_rate=spec.sample_rate, tmp=Path(tmp))
    ann = Path(root) / "annotations" / f"{out.stem}.tsv"
    ann.parent.mkdir(parents=True, exist_ok=True)
    lines = ["frame_index\ttime\tinstrument\tx1\ty1\tx2\ty2"] + ["\t".join(map(str, b)) for b in boxes]
    ann.write_text("\n".join(lines) + "\n")
    return rel


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


def generate_demo_dataset(root: str | Path, spec: DemoSpec, *, workers: int = 1, progress=None) -> Path:
    """Generate the demo dataset into ``root`` (written whole, then moved into place).

    Args:
        root: destination folder; replaced if it exists.
        spec: sizes and seed.
        workers: processes rendering videos in parallel.
        progress: optional callable ``(done, total, rel_path)`` called after each video.

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    jobs = demo_jobs(spec)
    with atomic_dir(root) as tmp:
        args = [(str(tmp), rel, insts, spec) for rel, insts in jobs]
        if workers > 1:
            with concurrent.futures.ProcessPoolExecutor(workers) as pool:
                for done, rel in enumerate(pool.map(_render_video, args), 1):
                    if progress:
                        progress(done, len(jobs), rel)
        else:
            for done, a in enumerate(args, 1):
                _render_video(a)
                if progress:
                    progress(done, len(jobs), a[1])
    return root


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="destination folder")
    for field in dataclasses.fields(DemoSpec):
        if field.name != "instruments":
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default)
    parser.add_argument("--instruments", nargs="+", default=list(VOICES))
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = vars(parser.parse_args(argv))
    root, workers = args.pop("root"), args.pop("workers")
    spec = DemoSpec(**{**args, "instruments": tuple(args["instruments"])})
    generate_demo_dataset(
        root, spec, workers=workers,
        progress=lambda d, n, rel: print(f"[{d}/{n}] {rel}", file=sys.stderr),
    )


if __name__ == "__main__":
    main()
