"""The input contract: a dataset root in the MUSIC layout, scanned into a manifest.

Layout::

    <root>/solo/<instrument>/<video_id>.<ext>
    <root>/duet/<instA>_<instB>/<video_id>.<ext>     (optional)

Instrument names come from the solo folder names. A duet folder is two known names joined
by ``_``; it is parsed by matching known names, because names such as ``acoustic_guitar``
hold underscores themselves.
"""

from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from avsep.errors import InputError
from avsep.media import MediaError, probe_media

__all__ = [
    "VIDEO_EXTENSIONS",
    "DatasetError",
    "VideoEntry",
    "parse_duet_folder",
    "scan_dataset",
    "assign_splits",
    "build_manifest",
    "read_manifest",
    "MANIFEST_COLUMNS",
]

#: File extensions treated as videos when scanning (lower case, without the dot).
VIDEO_EXTENSIONS = ("mp4", "mkv", "webm", "avi", "mov", "m4v", "mpg", "mpeg", "flv", "ts")

MANIFEST_COLUMNS = [
    "video_id",
    "path",
    "kind",
    "labels",
    "split",
    "duration",
    "sample_rate",
    "channels",
    "width",
    "height",
    "fps",
]


class DatasetError(InputError, ValueError):
    """The dataset does not follow the input contract. The message lists every problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s) in the dataset:\n{lines}")


@dataclasses.dataclass(frozen=True)
class VideoEntry:
    """One video found in the dataset root."""

    video_id: str
    path: Path
    kind: str  # "solo" or "duet"
    labels: tuple[str, ...]


def parse_duet_folder(name: str, known: Iterable[str]) -> tuple[str, str] | None:
    """Split a duet folder name into two known instrument names.

    >>> parse_duet_folder("acoustic_guitar_violin", ["acoustic_guitar", "violin", "guitar"])
    ('acoustic_guitar', 'violin')

    Returns ``None`` when no split gives two known names, and raises when more than one does.
    """
    known = set(known)
    matches = []
    for i, char in enumerate(name):
        if char == "_":
            left, right = name[:i], name[i + 1 :]
            if left in known and right in known and left != right:
                matches.append((left, right))
    if len(matches) > 1:
        raise ValueError(f"duet folder {name!r} splits into known names in several ways: {matches}")
    return matches[0] if matches else None


def _video_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    exts = {e.lower().lstrip(".") for e in extensions}
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower().lstrip(".") in exts
    )


def scan_dataset(
    root: str | Path,
    *,
    instruments: Sequence[str] | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> list[VideoEntry]:
    """List the videos of a MUSIC-layout root.

    Args:
        root: the dataset root, holding ``solo/`` and optionally ``duet/``.
        instruments: restrict to these labels; ``None`` or empty keeps every solo folder.
            Duets need both their instruments kept.
        extensions: file extensions taken as videos.

    Raises:
        DatasetError: listing every problem found (no solo folder, unknown instrument,
            unparsable duet folder, duplicate video ids, instruments without videos).
    """
    root = Path(root)
    problems: list[str] = []
    solo_dir = root / "solo"
    if not solo_dir.is_dir():
        raise DatasetError([f"{solo_dir}: missing; the root must hold solo/<instrument>/<video>"])
    folders = sorted(p for p in solo_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    known = [p.name for p in folders]
    wanted = list(instruments) if instruments else known
    for name in wanted:
        if name not in known:
            problems.append(
                f"dataset.instruments names {name!r}, but {solo_dir} has no such folder "
                f"(found: {', '.join(known) or 'none'})"
            )
    entries: list[VideoEntry] = []
    for folder in folders:
        if folder.name not in wanted:
            continue
        files = _video_files(folder, extensions)
        if not files:
            problems.append(f"{folder}: instrument folder holds no video files")
        entries += [VideoEntry(f.stem, f, "solo", (folder.name,)) for f in files]
    duet_dir = root / "duet"
    if duet_dir.is_dir():
        for folder in sorted(p for p in duet_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                pair = parse_duet_folder(folder.name, known)
            except ValueError as err:
                problems.append(f"{folder}: {err}")
                continue
            if pair is None:
                problems.append(
                    f"{folder}: duet folder name is not two known instruments joined by '_' "
                    f"(known: {', '.join(known)})"
                )
                continue
            if not set(pair) <= set(wanted):
                continue
            entries += [VideoEntry(f.stem, f, "duet", pair) for f in _video_files(folder, extensions)]
    seen: dict[str, Path] = {}
    for e in entries:
        if e.video_id in seen:
            problems.append(f"duplicate video id {e.video_id!r}: {seen[e.video_id]} and {e.path}")
        seen[e.video_id] = e.path
    if problems:
        raise DatasetError(problems)
    return entries


def assign_splits(
    entries: Sequence[VideoEntry], *, seed: int, val_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Assign train/val/test per video, deterministically.

    Solo videos are split per instrument, so every instrument has held-out test videos:
    ``n_test = max(1, round(n * test_fraction))``, ``n_val = round(n * val_fraction)``, and
    the rest train (at least one). Each instrument's shuffle is seeded by ``seed`` and the
    instrument's name, so adding an instrument leaves the others' splits unchanged. Duet
    videos have no stems to learn from and are always ``test``.

    Returns:
        dict mapping video_id to ``"train"``, ``"val"`` or ``"test"``.
    """
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"split fractions must satisfy 0 <= val < 1, 0 < test < 1, val + test < 1; "
            f"got val={val_fraction}, test={test_fraction}"
        )
    by_label: dict[str, list[str]] = {}
    split: dict[str, str] = {}
    for e in entries:
        if e.kind == "solo":
            by_label.setdefault(e.labels[0], []).append(e.video_id)
        else:
            split[e.video_id] = "test"
    problems = []
    for label in sorted(by_label):
        ids = sorted(by_label[label])
        n = len(ids)
        n_test = max(1, round(n * test_fraction))
        n_val = round(n * val_fraction)
        if n - n_test - n_val < 1:
            problems.append(
                f"instrument {label!r} has {n} solo video(s): too few for a train and a test "
                f"split with val={val_fraction}, test={test_fraction} (need at least "
                f"{n_test + n_val + 1})"
            )
            continue
        rng = np.random.default_rng([seed, zlib.crc32(label.encode())])
        order = rng.permutation(n)
        for rank, idx in enumerate(order):
            split[ids[idx]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    if problems:
        raise DatasetError(problems)
    return split


def build_manifest(
    root: str | Path,
    *,
    instruments: Sequence[str] | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> pd.DataFrame:
    """Scan, probe and split a dataset into the manifest table (see ``MANIFEST_COLUMNS``).

    Every video is probed; a video that ffmpeg cannot open, or that has no audio or no video
    stream, is a problem. All problems are collected and raised together.

    Raises:
        DatasetError: naming each bad file and what is wrong with it.
    """
    entries = scan_dataset(root, instruments=instruments, extensions=extensions)
    problems: list[str] = []
    rows = []
    for e in entries:
        try:
            info = probe_media(e.path)
        except MediaError as err:
            problems.append(str(err))
            continue
        if not info.has_audio:
            problems.append(f"{e.path}: no audio stream")
        if not info.has_video:
            problems.append(f"{e.path}: no video stream")
        if info.has_audio and info.duration <= 0:
            problems.append(f"{e.path}: zero duration")
        rows.append(
            {
                "video_id": e.video_id,
                "path": str(e.path),
                "kind": e.kind,
                "labels": ",".join(e.labels),
                "duration": round(info.duration, 3),
                "sample_rate": info.sample_rate,
                "channels": info.channels,
                "width": info.width,
                "height": info.height,
                "fps": round(info.fps, 3),
            }
        )
    if problems:
        raise DatasetError(problems)
    split = assign_splits(entries, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    table = pd.DataFrame(rows)
    table["split"] = table["video_id"].map(split)
    return table[MANIFEST_COLUMNS].sort_values(["kind", "labels", "video_id"], ignore_index=True)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read ``manifest.tsv`` written by the ``manifest`` rule."""
    table = pd.read_csv(path, sep="\t", dtype={"video_id": str, "labels": str, "path": str})
    missing = set(MANIFEST_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not a manifest, columns missing: {sorted(missing)}")
    return table
