"""The input contract: a dataset root in the MUSIC layout, scanned into a manifest.

Layout::

    <root>/solo/<instrument>/<video_id>.<ext>
    <root>/duet/<instA>_<instB>/<video_id>.<ext>     (optional)

    <root>/splits.tsv                                (optional)

Instrument names come from the solo folder names. A duet folder is two known names joined
by ``_``; it is parsed by matching known names, because names such as ``acoustic_guitar``
hold underscores themselves. ``splits.tsv``, tab-separated with columns ``video_id`` and
``split`` (``train``, ``val`` or ``test``), fixes the split of the videos it lists; the
others are split by :func:`assign_splits`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import re
import zlib
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from avsep.errors import InputError
from avsep.media import MediaError, MediaInfo, probe_media, read_audio_stream

__all__ = [
    "VIDEO_EXTENSIONS",
    "DatasetError",
    "VideoEntry",
    "Rejection",
    "Scan",
    "REJECTED_COLUMNS",
    "check_media",
    "parse_duet_folder",
    "scan_dataset",
    "assign_duet_splits",
    "assign_splits",
    "held_out_count",
    "SPLITS_FILE",
    "STEMS_DIR",
    "check_stems",
    "stems_folder",
    "SPLIT_NAMES",
    "read_splits_file",
    "dataset_splits",
    "build_manifest",
    "read_manifest",
    "MANIFEST_COLUMNS",
]

log = logging.getLogger(__name__)

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

    def __init__(self, problems: Sequence[str], hint: str = ""):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in the dataset:\n{lines}" + (f"\n{hint}" if hint else "")
        )


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


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def video_folders(root: str | Path, kind: str, extensions: Sequence[str]) -> dict[str, list[Path]]:
    """The video files of a MUSIC-layout root's ``kind`` folder (``solo`` or ``duet``), by
    subfolder name, without probing them: the one scan of the dataset's folders, which the
    manifest, the config checks and the workflow's inputs all read. Hidden files and folders
    and other extensions are left out; a missing ``kind`` folder gives none."""
    return {folder.name: _video_files(folder, extensions) for folder in _subfolders(Path(root) / kind)}


def dataset_video_files(root: str | Path, extensions: Sequence[str]) -> list[Path]:
    """Every video file under ``solo/*/`` and ``duet/*/`` of ``root``, sorted."""
    return sorted(p for kind in ("solo", "duet") for files in video_folders(root, kind, extensions).values()
                  for p in files)


#: What an instrument folder may be called: the name becomes a label, a file name part and
#: a Snakemake wildcard value.
INSTRUMENT_NAME = re.compile(r"[A-Za-z0-9_]+")

REJECTED_COLUMNS = ["path", "video_id", "reason"]


@dataclasses.dataclass(frozen=True)
class Rejection:
    """A video left out of the manifest, and why."""

    path: str
    video_id: str
    reason: str

    def message(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclasses.dataclass
class Scan:
    """What :func:`scan_dataset` found: usable entries, files with problems, and files left
    out on purpose (instruments not in ``dataset.instruments``)."""

    entries: list[VideoEntry]
    rejected: list[Rejection]
    excluded: dict[str, int]


def scan_dataset(
    root: str | Path,
    *,
    instruments: Sequence[str] | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> Scan:
    """List the videos of a MUSIC-layout root, and the files that break the layout.

    Args:
        root: the dataset root, holding ``solo/`` and optionally ``duet/``.
        instruments: restrict to these labels; ``None`` or empty keeps every solo folder.
            Duets need both their instruments kept. Videos of other instruments are counted
            in ``Scan.excluded``, not rejected.
        extensions: file extensions taken as videos.

    Each rejected file gets one reason: an unknown instrument folder (a name that cannot be
    a label), a video outside any instrument folder, a duet folder that does not parse into
    two known instruments, or a video id used twice (every copy is rejected: which one is
    meant cannot be told).

    Raises:
        DatasetError: when the root has no ``solo/`` folder, or a configured instrument has
            no folder: nothing can be scanned then.
    """
    root = Path(root)
    solo_dir = root / "solo"
    if not solo_dir.is_dir():
        raise DatasetError([f"{solo_dir}: missing; the root must hold solo/<instrument>/<video>"])
    solo = video_folders(root, "solo", extensions)
    known = [name for name in solo if INSTRUMENT_NAME.fullmatch(name)]
    wanted = list(instruments) if instruments else known
    missing = [name for name in wanted if name not in known]
    if missing:
        raise DatasetError(
            [
                f"dataset.instruments names {name!r}, but {solo_dir} has no such folder "
                f"(found: {', '.join(known) or 'none'})"
                for name in missing
            ]
        )
    entries: list[VideoEntry] = []
    rejected: list[Rejection] = []
    excluded: dict[str, int] = {}
    for path in _video_files(solo_dir, extensions):
        rejected.append(Rejection(str(path), path.stem, "video outside any instrument folder "
                                  "(expected solo/<instrument>/<video>)"))
    for name, files in solo.items():
        if name not in known:
            rejected += [
                Rejection(str(f), f.stem, f"unknown instrument folder {name!r}: an "
                          "instrument name holds only letters, digits and '_'")
                for f in files
            ]
        elif name not in wanted:
            excluded[name] = len(files)
        else:
            entries += [VideoEntry(f.stem, f, "solo", (name,)) for f in files]
    for name, files in video_folders(root, "duet", extensions).items():
        try:
            pair = parse_duet_folder(name, known)
            reason = None if pair else (
                f"duet folder {name!r} is not two known instruments joined by '_' "
                f"(known: {', '.join(known)})"
            )
        except ValueError as err:
            pair, reason = None, str(err)
        if reason:
            rejected += [Rejection(str(f), f.stem, reason) for f in files]
        elif not set(pair) <= set(wanted):
            excluded[name] = len(files)
        else:
            entries += [VideoEntry(f.stem, f, "duet", pair) for f in files]
    by_id: dict[str, list[VideoEntry]] = {}
    for e in entries:
        by_id.setdefault(e.video_id, []).append(e)
    entries = []
    for vid, copies in by_id.items():
        if len(copies) == 1:
            entries += copies
            continue
        for e in copies:
            others = ", ".join(str(o.path) for o in copies if o is not e)
            rejected.append(Rejection(str(e.path), vid, f"duplicate video id {vid!r} (also {others})"))
    return Scan(entries, sorted(rejected, key=lambda r: r.path), excluded)


def held_out_count(n: int, test_fraction: float) -> int:
    """Held-out test videos of an instrument with ``n`` solo videos: at least one."""
    return max(1, round(n * test_fraction))


def assign_duet_splits(
    entries: Sequence[VideoEntry], *, seed: int, val_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Train/val/test of the duet (multi-source) videos, deterministically.

    Over all duets together, ``n_test = max(1, round(N * test_fraction))`` (none when there
    are no duets), ``n_val = round(N * val_fraction)`` when at least one duet is left to
    train, and the rest train. The duets are taken in turns over their instrument pairs:
    one duet of every pair (pairs in a seeded order, each pair's duets seeded too) before a
    second of any, the test duets first, then the validation duets. So the held-out duets
    cover as many pairs as they can, and a pair with several duets keeps the others for
    training. The seed mixes ``seed`` with the video ids, so the split does not depend on
    the order of ``entries``.
    """
    if not entries:
        return {}
    by_pair: dict[tuple[str, ...], list[str]] = {}
    for e in entries:
        by_pair.setdefault(tuple(sorted(e.labels)), []).append(e.video_id)
    rng = np.random.default_rng([seed, zlib.crc32("duets".encode())])
    pairs = [by_pair[k] for k in sorted(by_pair)]
    pairs = [sorted(pairs[i]) for i in rng.permutation(len(pairs))]
    pairs = [[ids[j] for j in rng.permutation(len(ids))] for ids in pairs]
    order = [ids[r] for r in range(max(map(len, pairs))) for ids in pairs if r < len(ids)]
    n = len(order)
    n_test = min(n, held_out_count(n, test_fraction))
    n_val = min(n - n_test, round(n * val_fraction)) if n - n_test > 1 else 0
    return {v: "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
            for rank, v in enumerate(order)}


def assign_splits(
    entries: Sequence[VideoEntry], *, seed: int, val_fraction: float, test_fraction: float
) -> dict[str, str]:
    """Assign train/val/test per video, deterministically.

    Solo videos are split per instrument, so every instrument has held-out test videos:
    ``n_test = max(1, round(n * test_fraction))``, ``n_val = round(n * val_fraction)``, and
    the rest train (at least one). Each instrument's shuffle is seeded by ``seed`` and the
    instrument's name, so adding an instrument leaves the others' splits unchanged.

    Duet videos are split among themselves by :func:`assign_duet_splits` (the MIML network
    learns from the training duets with their weak labels, and the test duets are separated
    and scored).

    Returns:
        dict mapping video_id to ``"train"``, ``"val"`` or ``"test"``.
    """
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(
            f"split fractions must satisfy 0 <= val < 1, 0 < test < 1, val + test < 1; "
            f"got val={val_fraction}, test={test_fraction}"
        )
    by_label: dict[str, list[str]] = {}
    split = assign_duet_splits([e for e in entries if e.kind != "solo"], seed=seed, val_fraction=val_fraction,
                               test_fraction=test_fraction)
    for e in entries:
        if e.kind == "solo":
            by_label.setdefault(e.labels[0], []).append(e.video_id)
    problems = []
    for label in sorted(by_label):
        ids = sorted(by_label[label])
        n = len(ids)
        n_test = held_out_count(n, test_fraction)
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


#: The file in a dataset root that fixes the split of the videos it lists.
SPLITS_FILE = "splits.tsv"
#: Where a dataset keeps the true stems of its multi-source videos:
#: ``<root>/stems/<video_id>/<instrument>.wav``.
STEMS_DIR = "stems"
#: How far a stem's length may be from its video's audio (AAC adds some priming samples).
STEM_LENGTH_TOLERANCE = 0.1  # seconds


def stems_folder(root: str | Path, video_id: str) -> Path:
    """The folder of a video's true stems (it need not exist)."""
    return Path(root) / STEMS_DIR / video_id


def check_stems(folder: str | Path, instruments: Sequence[str], *, sample_rate: int, seconds: float) -> list[str]:
    """What is wrong with a video's true stems: one ``<instrument>.wav`` per instrument it
    shows, each at the video's audio ``sample_rate`` and within
    :data:`STEM_LENGTH_TOLERANCE` of its audio's ``seconds``. Empty when they are usable."""
    import soundfile as sf

    folder = Path(folder)
    reasons = []
    for inst in instruments:
        path = folder / f"{inst}.wav"
        if not path.is_file():
            found = sorted(p.name for p in folder.glob("*.wav"))
            reasons.append(f"true stems: no {path} (the folder holds {', '.join(found) or 'no wav file'})")
            continue
        try:
            info = sf.info(str(path))
        except RuntimeError as err:
            reasons.append(f"true stems: {path} cannot be read ({err})")
            continue
        if info.samplerate != sample_rate:
            reasons.append(f"true stems: {path} is at {info.samplerate} Hz, the video's audio at {sample_rate} Hz")
        elif abs(info.frames / info.samplerate - seconds) > STEM_LENGTH_TOLERANCE:
            reasons.append(f"true stems: {path} lasts {info.frames / info.samplerate:.2f} s, the video's audio "
                           f"{seconds:.2f} s")
    return reasons

#: The split names, in the order of the pipeline.
SPLIT_NAMES = ("train", "val", "test")


def read_splits_file(path: str | Path) -> dict[str, str]:
    """Read a dataset's ``splits.tsv``: tab-separated, columns ``video_id`` and ``split``.

    Returns:
        dict mapping video_id to ``"train"``, ``"val"`` or ``"test"``.

    Raises:
        DatasetError: naming the file and every bad row: a missing column, a split that is
            not train, val or test, a video listed twice.
    """
    path = Path(path)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetError([f"{path}: not a tab-separated table ({err})"]) from err
    missing = [c for c in ("video_id", "split") if c not in table.columns]
    if missing:
        raise DatasetError([f"{path}: column(s) {', '.join(missing)} missing; expected the columns "
                            f"video_id and split, found {', '.join(table.columns) or 'none'}"])
    problems, split = [], {}
    for line, (vid, name) in enumerate(zip(table["video_id"].str.strip(), table["split"].str.strip()), 2):
        if name not in SPLIT_NAMES:
            problems.append(f"{path} line {line}: video {vid!r} has split {name!r}; allowed: "
                            f"{', '.join(SPLIT_NAMES)}")
        elif vid in split:
            problems.append(f"{path} line {line}: video {vid!r} is listed twice")
        else:
            split[vid] = name
    if problems:
        raise DatasetError(problems)
    return split


def dataset_splits(
    entries: Sequence[VideoEntry],
    listed: Mapping[str, str],
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    source: str = SPLITS_FILE,
) -> dict[str, str]:
    """The split of every entry: ``listed`` for the videos it names, :func:`assign_splits`
    for the others.

    An unlisted solo video gets the split :func:`assign_splits` gives it among all the
    solo videos of its instrument, the same as with no list at all; an unlisted duet gets
    the one :func:`assign_duet_splits` gives it among all the duets. Listed ids that are not among ``entries`` are ignored.

    Raises:
        DatasetError: when an instrument is left without a training solo video.
    """
    unlisted_labels = {e.labels[0] for e in entries if e.kind == "solo" and e.video_id not in listed}
    seeded = assign_splits(
        [e for e in entries if e.kind == "duet" or e.labels[0] in unlisted_labels],
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
    )
    split = {e.video_id: listed.get(e.video_id) or seeded[e.video_id] for e in entries}
    labels = sorted({e.labels[0] for e in entries if e.kind == "solo"})
    untrained = [lab for lab in labels if not any(
        split[e.video_id] == "train" for e in entries if e.kind == "solo" and e.labels[0] == lab)]
    if untrained:
        raise DatasetError([f"instrument {lab!r} has no train video (from {source} and the seeded split)"
                            for lab in untrained])
    return split


def check_media(path: str | Path, *, chunk_seconds: float, max_seconds: float) -> tuple[MediaInfo | None, list[str]]:
    """Probe one video and say everything that keeps it out of the pipeline.

    Returns:
        ``(info, reasons)``: ffmpeg's report (``None`` when the file cannot be opened) and
        the reasons, empty for a usable video.
    """
    try:
        info = probe_media(path)
    except MediaError as err:
        return None, [err.problem]
    if info.duration <= 0 and not (info.has_audio and info.has_video):
        return info, ["zero duration (the container holds no audio or video to read)"]
    reasons = []
    if not info.has_video:
        reasons.append("no video stream")
    if not info.has_audio:
        reasons.append("no audio stream")
        return info, reasons
    seconds, damage = read_audio_stream(path)
    if damage:
        reasons.append(f"unreadable or truncated container ({damage})")
    elif info.duration <= 0 or seconds <= 0:
        reasons.append("zero duration (the audio stream holds no samples)")
    elif seconds < chunk_seconds:
        reasons.append(
            f"audio is {seconds:.2f} s long, shorter than one chunk (nmf.chunk_seconds "
            f"{chunk_seconds:g} s)"
        )
    if max_seconds and max(info.duration, seconds) > max_seconds:
        reasons.append(
            f"{max(info.duration, seconds):.0f} s long, over audio.max_seconds "
            f"({max_seconds:g} s); raise the limit or cut the video"
        )
    return info, reasons


def _manifest_row(root, e: VideoEntry, info: MediaInfo | None, reasons: list[str], rows: list, rejected: list) -> None:
    """One probed video into the manifest's rows, or its reasons into ``rejected``."""
    reasons = list(reasons)
    stems = stems_folder(root, e.video_id)
    if e.kind == "duet" and info is not None and not reasons and stems.is_dir():
        reasons += check_stems(stems, e.labels, sample_rate=info.sample_rate, seconds=info.duration)
    rejected.extend(Rejection(str(e.path), e.video_id, r) for r in reasons)
    if not reasons:
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


def build_manifest(
    root: str | Path,
    *,
    instruments: Sequence[str] | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
    chunk_seconds: float = 0.0,
    max_seconds: float = 0.0,
    on_bad_input: str = "fail",
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scan, probe and split a dataset into the manifest table (see ``MANIFEST_COLUMNS``).

    Every video is probed and its audio packets read (:func:`check_media`). With
    ``on_bad_input="fail"`` any problem raises, listing all of them; with ``"skip"`` the bad
    videos are left out and returned in the rejected table. The splits are those of
    ``<root>/splits.tsv`` for the videos it lists and the seeded rule's for the others
    (:func:`dataset_splits`); the log says which were used.

    Args:
        chunk_seconds: audio shorter than this is a problem (one NMF chunk).
        max_seconds: videos longer than this are a problem; 0 sets no limit.
        progress: called with ``(done, total)`` after each probed video.
        workers: videos probed at once (each probe is ffmpeg in its own process); the
            table is the same for any number.

    Returns:
        ``(manifest, rejected)``; ``rejected`` has columns ``REJECTED_COLUMNS``.

    Raises:
        DatasetError: naming each bad file and what is wrong with it (``fail``), when
            too few videos remain for the splits, or when ``splits.tsv`` is malformed.
    """
    if on_bad_input not in ("fail", "skip"):
        raise ValueError(f"on_bad_input must be 'fail' or 'skip', got {on_bad_input!r}")
    scan = scan_dataset(root, instruments=instruments, extensions=extensions)
    rejected = list(scan.rejected)
    rows = []

    def check(e):
        return check_media(e.path, chunk_seconds=chunk_seconds, max_seconds=max_seconds)

    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        checked = pool.map(check, scan.entries)  # in order, whichever finishes first
        for i, (e, (info, reasons)) in enumerate(zip(scan.entries, checked)):
            _manifest_row(root, e, info, reasons, rows, rejected)
            if progress:
                progress(i + 1, len(scan.entries))
    rejected.sort(key=lambda r: (r.path, r.reason))
    if rejected and on_bad_input == "fail":
        raise DatasetError(
            [r.message() for r in rejected],
            hint="Set dataset.on_bad_input: skip to leave these videos out and carry on.",
        )
    kept = [e for e in scan.entries if e.video_id in {row["video_id"] for row in rows}]
    splits_file = Path(root) / SPLITS_FILE
    listed = read_splits_file(splits_file) if splits_file.is_file() else {}
    split = dataset_splits(
        kept, listed, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, source=str(splits_file)
    )
    if listed:
        used = sum(e.video_id in listed for e in kept)
        log.info("splits: %d of %d videos from %s, %d by the seeded rule (split.seed %d)",
                 used, len(kept), splits_file, len(kept) - used, seed)
        unknown = sorted(set(listed) - {e.video_id for e in kept})
        if unknown:
            log.info("%s lists %d video(s) not in the manifest, ignored: %s", splits_file, len(unknown),
                     ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else ""))
    else:
        log.info("splits: all %d videos by the seeded rule (split.seed %d); no %s", len(kept), seed, splits_file)
    table = pd.DataFrame(rows, columns=[c for c in MANIFEST_COLUMNS if c != "split"])
    table["split"] = table["video_id"].map(split)
    table = table[MANIFEST_COLUMNS].sort_values(["kind", "labels", "video_id"], ignore_index=True)
    rejected_table = pd.DataFrame([dataclasses.asdict(r) for r in rejected], columns=REJECTED_COLUMNS)
    return table, rejected_table


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read ``manifest.tsv`` written by the ``manifest`` rule."""
    table = pd.read_csv(path, sep="\t", dtype={"video_id": str, "labels": str, "path": str})
    missing = set(MANIFEST_COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path}: not a manifest, columns missing: {sorted(missing)}")
    return table
