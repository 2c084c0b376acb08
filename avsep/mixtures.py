"""Test mixtures by the MUSIC "mix-and-separate" protocol (Sound of Pixels, Co-Separation).

Two held-out solo videos of different instruments are cut to the same length; their audio
is scaled by 1/2 and summed, and their frames are placed side by side, so the scaled sources
are the ground-truth stems and left/right is the ground-truth position.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from avsep.errors import InputError
from avsep.files import read_frames, read_mono, read_wav, write_frames, write_json, write_wav

__all__ = ["PLAN_COLUMNS", "MixtureError", "plan_mixtures", "build_mixture", "build_duet_reference", "read_item",
           "read_plan"]

PLAN_COLUMNS = [
    "mix_id",
    "left_video",
    "left_instrument",
    "left_start",
    "right_video",
    "right_instrument",
    "right_start",
    "seconds",
]

#: Scale applied to each source before summing, as in the protocol.
SOURCE_GAIN = 0.5


class MixtureError(InputError, ValueError):
    """The mixtures asked for cannot be built from the test split."""


def plan_mixtures(
    manifest: pd.DataFrame, *, count: int, seconds: float, seed: int, frame_fps: float
) -> pd.DataFrame:
    """Choose ``count`` pairs of test-split solo videos of different instruments.

    Instrument pairs are visited in a seeded random order, cycling, so the mixtures cover
    as many instrument combinations as the count allows; within an instrument pair the
    videos, the left/right order and the clip starts are drawn from the same generator.
    Start times are multiples of ``1 / frame_fps`` so that the sampled frames line up.

    Args:
        manifest: the manifest table (only ``kind == "solo"`` and ``split == "test"`` rows
            are used).
        count: number of mixtures.
        seconds: length of every clip in seconds.
        seed: the generator seed.
        frame_fps: the frame sampling rate of the extraction stage, in Hz.

    Returns:
        The plan, one row per mixture, columns ``PLAN_COLUMNS``.

    Raises:
        MixtureError: when fewer than ``count`` distinct pairs exist, or a video is shorter
            than ``seconds``.
    """
    test = manifest[(manifest["kind"] == "solo") & (manifest["split"] == "test")]
    # A clip needs a margin at the end: the container duration can exceed the audio's.
    usable = test[test["duration"] >= seconds + 0.1]
    by_label = {label: sorted(g["video_id"]) for label, g in usable.groupby("labels")}
    duration = dict(zip(usable["video_id"], usable["duration"]))
    label_pairs = list(itertools.combinations(sorted(by_label), 2))
    n_pairs = sum(len(by_label[a]) * len(by_label[b]) for a, b in label_pairs)
    if count > n_pairs:
        short = sorted(set(test["video_id"]) - set(usable["video_id"]))
        raise MixtureError(
            f"mixtures.count={count}, but the test split allows only {n_pairs} distinct pairs "
            f"of different instruments ({len(usable)} test solo videos at least "
            f"{seconds} s long over {len(by_label)} instruments"
            + (f"; too short: {', '.join(short)}" if short else "")
            + ")"
        )
    rng = np.random.default_rng(seed)
    order = [label_pairs[i] for i in rng.permutation(len(label_pairs))]
    used: set[tuple[str, str]] = set()
    rows = []
    step = 1.0 / frame_fps
    for label_a, label_b in itertools.cycle(order):
        if len(rows) == count:
            break
        free = [
            (va, vb)
            for va in by_label[label_a]
            for vb in by_label[label_b]
            if (va, vb) not in used
        ]
        if not free:
            continue
        va, vb = free[rng.integers(len(free))]
        used.add((va, vb))
        sources = [(va, label_a), (vb, label_b)]
        if rng.random() < 0.5:
            sources.reverse()
        starts = []
        for vid, _ in sources:
            room = duration[vid] - seconds - 0.1
            starts.append(round(float(np.floor(rng.uniform(0, room) / step) * step), 6))
        rows.append(
            {
                "mix_id": f"mix{len(rows):03d}",
                "left_video": sources[0][0],
                "left_instrument": sources[0][1],
                "left_start": starts[0],
                "right_video": sources[1][0],
                "right_instrument": sources[1][1],
                "right_start": starts[1],
                "seconds": float(seconds),
            }
        )
    return pd.DataFrame(rows, columns=PLAN_COLUMNS)


def _cut_audio(path: Path, start: float, seconds: float) -> tuple[np.ndarray, int]:
    audio, sr = read_wav(path)
    first, n = int(round(start * sr)), int(round(seconds * sr))
    if first + n > len(audio):
        raise MixtureError(
            f"{path}: {len(audio) / sr:.3f} s of audio, but the clip needs {start + seconds:.3f} s"
        )
    return audio[first : first + n], sr


def _cut_frames(path: Path, start: float, seconds: float, fps: float | None) -> tuple[np.ndarray, dict]:
    frames, stamps, attrs = read_frames(path, expect=None if fps is None else {"fps": fps})
    # Half a frame interval of tolerance keeps float rounding from dropping a frame.
    half = 0.5 / float(attrs["fps"])
    keep = (stamps >= start - half) & (stamps < start + seconds - half)
    return frames[keep], attrs


def build_mixture(
    plan_row: dict,
    *,
    left_audio: str | Path,
    right_audio: str | Path,
    left_frames: str | Path,
    right_frames: str | Path,
    out_dir: str | Path,
    frame_fps: float | None = None,
) -> dict:
    """Write one mixture: ``mixture.wav``, one ``<instrument>.wav`` stem per source,
    ``frames.h5`` (the two clips side by side, left source on the left) and
    ``mixture.json``.

    Args:
        plan_row: one row of :func:`plan_mixtures`, as a dict.
        left_audio, right_audio: extracted mono WAVs of the two source videos.
        left_frames, right_frames: extracted frames files of the two source videos.
        out_dir: the mixture's folder (written whole; callers pass a temporary folder).
        frame_fps: the frame rate the frames files must have been sampled at (checked).

    Returns:
        The metadata written to ``mixture.json``.
    """
    out_dir = Path(out_dir)
    seconds = float(plan_row["seconds"])
    stems, clips = {}, []
    sr = None
    for side, audio_path, frames_path in (
        ("left", left_audio, left_frames),
        ("right", right_audio, right_frames),
    ):
        start = float(plan_row[f"{side}_start"])
        audio, rate = _cut_audio(Path(audio_path), start, seconds)
        if sr is not None and rate != sr:
            raise MixtureError(f"sample rates differ between sources: {sr} and {rate} Hz")
        sr = rate
        stems[plan_row[f"{side}_instrument"]] = (audio * np.float32(SOURCE_GAIN)).astype(np.float32)
        clips.append(_cut_frames(Path(frames_path), start, seconds, frame_fps))
    mixture = np.zeros_like(next(iter(stems.values())))
    for stem in stems.values():
        mixture += stem
    write_wav(out_dir / "mixture.wav", mixture, sr)
    for instrument, stem in stems.items():
        write_wav(out_dir / f"{instrument}.wav", stem, sr)
    (left, left_attrs), (right, right_attrs) = clips
    if left.shape[1:] != right.shape[1:]:
        raise MixtureError(f"frame sizes differ between sources: {left.shape[1:]} and {right.shape[1:]}")
    n = min(len(left), len(right))
    fps = float(left_attrs["fps"])
    side_by_side = np.concatenate([left[:n], right[:n]], axis=2)
    write_frames(out_dir / "frames.h5", side_by_side, np.arange(n) / fps, fps=fps)
    meta = {
        "mix_id": plan_row["mix_id"],
        "seconds": seconds,
        "sample_rate": sr,
        "instruments": [plan_row["left_instrument"], plan_row["right_instrument"]],
        "source_gain": SOURCE_GAIN,
        "sources": [
            {
                "instrument": plan_row[f"{side}_instrument"],
                "position": side,
                "video_id": plan_row[f"{side}_video"],
                "start": float(plan_row[f"{side}_start"]),
                "stem": f"{plan_row[f'{side}_instrument']}.wav",
                # Horizontal extent in the side-by-side frame, as fractions of its width.
                "x_range": [0.0, 0.5] if side == "left" else [0.5, 1.0],
            }
            for side in ("left", "right")
        ],
        "frames": {"file": "frames.h5", "count": int(n), "fps": fps,
                   "height": int(side_by_side.shape[1]), "width": int(side_by_side.shape[2])},
    }
    write_json(out_dir / "mixture.json", meta)
    return meta


def build_duet_reference(
    video_id: str,
    *,
    audio: str | Path,
    stems: dict[str, str | Path],
    out_dir: str | Path,
    sides: dict[str, str] | None = None,
) -> dict:
    """Write a duet with true stems in the layout of a test mixture, so that it is scored
    the same way: ``mixture.wav`` (the duet's extracted audio), one ``<instrument>.wav`` per
    stem (mono, resampled to the audio's rate, cut or padded to its length) and
    ``mixture.json`` (``kind: duet``).

    Args:
        audio: the duet's extracted mono WAV.
        stems: instrument -> the dataset's true stem (``<root>/stems/<video_id>/``).
        sides: instrument -> ``left``/``right`` from the dataset's boxes; positions are
            left empty without them (location accuracy is then not scored).
    """
    out_dir = Path(out_dir)
    mixture, sr = read_wav(audio)
    if mixture.ndim > 1:
        raise MixtureError(f"{audio}: expected the extracted mono audio, got {mixture.shape[1]} channels")
    sources = []
    for instrument, path in stems.items():
        stem = read_mono(path, sr)
        stem = np.pad(stem[: len(mixture)], (0, max(0, len(mixture) - len(stem)))).astype(np.float32)
        write_wav(out_dir / f"{instrument}.wav", stem, sr)
        sources.append({"instrument": instrument, "position": (sides or {}).get(instrument),
                        "video_id": video_id, "stem": f"{instrument}.wav", "source_file": str(path)})
    write_wav(out_dir / "mixture.wav", mixture, sr)
    meta = {"mix_id": video_id, "kind": "duet", "seconds": len(mixture) / sr, "sample_rate": sr,
            "instruments": list(stems), "sources": sources}
    write_json(out_dir / "mixture.json", meta)
    return meta


def read_item(folder: str | Path) -> tuple[dict, np.ndarray, int, dict, dict]:
    """A test mixture's or a duet reference's folder: ``(meta, mixture, sample_rate, stems,
    sides)``, stems and sides by instrument (a side is None where it is not known)."""
    import json

    folder = Path(folder)
    meta = json.loads((folder / "mixture.json").read_text())
    mixture, sr = read_wav(folder / "mixture.wav")
    stems = {s["instrument"]: read_wav(folder / s["stem"])[0] for s in meta["sources"]}
    return meta, mixture, sr, stems, {s["instrument"]: s.get("position") for s in meta["sources"]}


def read_plan(path: str | Path) -> pd.DataFrame:
    """Read the mixture plan written by the ``plan_mixtures`` rule."""
    table = pd.read_csv(path, sep="\t", dtype={"left_video": str, "right_video": str})
    missing = set(PLAN_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not a mixture plan, columns missing: {sorted(missing)}")
    return table
