"""The demo's sound: melodies of each instrument rendered from a General MIDI soundfont,
then recorded through a microphone and a room that differ from video to video.

Audio is rendered from the General MIDI soundfont that ships inside the ``pretty_midi``
wheel (TimGM6mb.sf2) with ``tinysoundfont``, using each instrument's GM program
(:data:`VOICES`), with varied melodies, register, dynamics, tempo and note lengths. Each
video is then recorded differently (:class:`Recording`): a microphone tilt (first-order low
and high shelves, up to 6 dB each), a room (RT60 0.1-1.0 s, a wide range of reverberant
level, a pre-delay), a level and background noise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter

__all__ = [
    "InstrumentVoice",
    "VOICES",
    "soundfont_path",
    "Recording",
    "draw_recording",
    "apply_recording",
    "render_melody",
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
