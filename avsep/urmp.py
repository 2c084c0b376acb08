"""URMP read as duets with their true stems (``dataset.layout: urmp``).

URMP (Li et al., 2018) records chamber pieces one player at a time and assembles the video;
each piece comes with its separately recorded tracks. A URMP root holds one folder per
piece::

    <root>/01_Jupiter_vn_vc/Vid_01_Jupiter_vn_vc.mp4
                           /AuSep_1_vn_01_Jupiter.wav
                           /AuSep_2_vc_01_Jupiter.wav
                           (AuMix_*, F0s_*, Notes_*, Sco_* are not read)

:func:`read_urmp` lists every piece with the instruments its folder name gives through
:data:`URMP_CODES`, and says why a piece cannot be used: more than two players (vision
splits a frame into two sides), one instrument twice (tracks are named by instrument), an
instrument that the models used do not know, or files that are missing or do not fit.
:func:`write_layout` turns the usable pieces into the MUSIC layout the pipeline reads:
``duet/<a>_<b>/<piece>.mp4`` (a link to the video), ``stems/<piece>/<instrument>.wav`` at
the video's audio rate, empty ``solo/<instrument>/`` folders that name the instruments, and
a ``splits.tsv`` that puts every piece in the test split: URMP has no solo videos, so it is
evaluated with models trained on another dataset (``transfer.run``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from avsep.dataset import STEM_LENGTH_TOLERANCE, DatasetError

__all__ = ["URMP_CODES", "PIECE_COLUMNS", "Piece", "parse_piece_folder", "read_urmp", "write_layout"]

log = logging.getLogger(__name__)

#: URMP's instrument codes and the instrument names this project uses (MUSIC's names where
#: MUSIC has the instrument).
URMP_CODES: dict[str, str] = {
    "vn": "violin",
    "va": "viola",
    "vc": "cello",
    "db": "double_bass",
    "fl": "flute",
    "ob": "oboe",
    "cl": "clarinet",
    "sax": "saxophone",
    "bn": "bassoon",
    "tpt": "trumpet",
    "hn": "horn",
    "tbn": "trombone",
    "tba": "tuba",
}

#: What ``results/urmp/pieces.tsv`` lists: every piece folder, used or not, and why.
PIECE_COLUMNS = ["piece", "codes", "instruments", "players", "status", "reason", "video", "seconds"]


@dataclasses.dataclass
class Piece:
    """One URMP piece folder: its number, title, codes and files, and whether it is used."""

    folder: Path
    number: str
    title: str
    codes: tuple[str, ...]
    video: Path | None = None
    stems: tuple[Path, ...] = ()
    seconds: float = 0.0
    sample_rate: int = 0
    reason: str = ""

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def instruments(self) -> tuple[str, ...]:
        return tuple(URMP_CODES.get(c, c) for c in self.codes)

    @property
    def usable(self) -> bool:
        return not self.reason

    def row(self) -> dict:
        return {"piece": self.name, "codes": ",".join(self.codes), "instruments": ",".join(self.instruments),
                "players": len(self.codes), "status": "used" if self.usable else "skipped", "reason": self.reason,
                "video": str(self.video or ""), "seconds": round(self.seconds, 3)}


_PIECE = re.compile(r"(\d+)_(.+)")


def parse_piece_folder(name: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``"01_Jupiter_vn_vc"`` -> ``("01", "Jupiter", ("vn", "vc"))``: the number, the title
    and the trailing instrument codes (every code of :data:`URMP_CODES` at the end of the
    name, in player order). ``None`` for a name that is not a piece folder."""
    match = _PIECE.fullmatch(name)
    if not match:
        return None
    parts = match.group(2).split("_")
    n = len(parts)
    while n > 1 and parts[n - 1] in URMP_CODES:
        n -= 1
    if n == len(parts):
        return None
    return match.group(1), "_".join(parts[:n]), tuple(parts[n:])


def read_urmp(
    root: str | Path,
    *,
    known: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Piece], list[str]]:
    """Every piece folder of a URMP root, each with the reason it is skipped (empty when it
    is used), and the problems that are the data's fault (missing or unreadable files, a
    stem that does not last as long as the video).

    Args:
        known: the instruments the models used know (another run's labels); a piece with
            another instrument is skipped, with the reason. ``None``: no restriction.

    Pieces of more than two players, and pieces of one instrument twice, are skipped with
    the reason: vision splits a frame into two sides, and tracks are named by instrument.

    Raises:
        DatasetError: when the root holds no piece folder at all.
    """
    from avsep.media import MediaError, probe_media, read_audio_stream

    root = Path(root)
    if not root.is_dir():
        raise DatasetError([f"dataset.root: {root} does not exist (dataset.layout: urmp)"])
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    pieces, problems = [], []
    for folder in folders:
        parsed = parse_piece_folder(folder.name)
        if parsed:
            pieces.append(Piece(folder, *parsed))
    if not pieces:
        raise DatasetError([f"{root}: no URMP piece folder (NN_Title_inst1_inst2, instrument codes "
                            f"{', '.join(URMP_CODES)}); found {', '.join(p.name for p in folders[:5]) or 'nothing'}"])
    import soundfile as sf

    for i, piece in enumerate(pieces):
        names = piece.instruments
        if len(piece.codes) > 2:
            piece.reason = (f"{len(piece.codes)} players ({', '.join(names)}): vision splits a frame into two "
                            "sides, so only two-player pieces are separated")
        elif len(piece.codes) < 2:
            piece.reason = "one player: not a mixture"
        elif names[0] == names[1]:
            piece.reason = f"two {names[0]} players: tracks are named by instrument, so the two cannot be told apart"
        elif known is not None and not set(names) <= set(known):
            missing = [n for n in names if n not in known]
            piece.reason = (f"{', '.join(missing)} is not an instrument the models know "
                            f"(they know {', '.join(sorted(known))})")
        if progress:
            progress(i + 1, len(pieces))
        if not piece.usable:
            continue
        video = piece.folder / f"Vid_{piece.name}.mp4"
        candidates = sorted(piece.folder.glob("Vid_*"))
        if not video.is_file() and len(candidates) == 1:
            video = candidates[0]
        if not video.is_file():
            piece.reason = f"no video: expected {video.name} in {piece.folder}"
            problems.append(f"{piece.folder}: {piece.reason}")
            continue
        piece.video = video
        try:
            info = probe_media(video)
        except MediaError as err:
            piece.reason = f"{video.name} cannot be read ({err.problem})"
            problems.append(f"{video}: {err.problem}")
            continue
        if not info.has_audio:
            piece.reason = f"{video.name} has no audio stream"
            problems.append(f"{video}: no audio stream")
            continue
        seconds, damage = read_audio_stream(video)
        if damage:
            piece.reason = f"{video.name} is truncated or damaged ({damage})"
            problems.append(f"{video}: {damage}")
            continue
        piece.seconds, piece.sample_rate = seconds, info.sample_rate
        stems = []
        for k, code in enumerate(piece.codes, 1):
            stem = piece.folder / f"AuSep_{k}_{code}_{piece.number}_{piece.title}.wav"
            if not stem.is_file():
                found = sorted(p.name for p in piece.folder.glob("AuSep_*.wav"))
                piece.reason = f"no stem {stem.name} for player {k} ({code}); found {', '.join(found) or 'none'}"
                break
            try:
                stem_info = sf.info(str(stem))
            except RuntimeError as err:
                piece.reason = f"{stem.name} cannot be read ({err})"
                break
            length = stem_info.frames / stem_info.samplerate
            if abs(length - seconds) > STEM_LENGTH_TOLERANCE:
                piece.reason = (f"{stem.name} lasts {length:.2f} s, the video's audio {seconds:.2f} s (at most "
                                f"{STEM_LENGTH_TOLERANCE:g} s apart)")
                break
            stems.append(stem)
        if piece.reason:
            problems.append(f"{piece.folder}: {piece.reason}")
            continue
        piece.stems = tuple(stems)
    return pieces, problems


def write_layout(pieces: Sequence[Piece], out: str | Path) -> pd.DataFrame:
    """Write the usable pieces into ``out`` in the MUSIC layout (see the module docstring) and
    return the table of every piece (:data:`PIECE_COLUMNS`). Each stem is resampled to its
    video's audio rate, the rate the evaluation reads the audio at."""
    from scipy.io import wavfile

    from avsep.files import read_mono

    out = Path(out)
    used = [p for p in pieces if p.usable]
    for name in sorted({i for p in used for i in p.instruments}):
        (out / "solo" / name).mkdir(parents=True, exist_ok=True)
    for piece in used:
        folder = out / "duet" / "_".join(piece.instruments)
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / f"{piece.name}{piece.video.suffix.lower()}"
        os.symlink(piece.video.resolve(), link)
        stems = out / "stems" / piece.name
        stems.mkdir(parents=True, exist_ok=True)
        for name, stem in zip(piece.instruments, piece.stems):
            audio = read_mono(stem, piece.sample_rate)
            # scipy's plain float WAV (no time stamp inside): the same stems give the same bytes.
            wavfile.write(stems / f"{name}.wav", piece.sample_rate, np.asarray(audio, np.float32))
    splits = pd.DataFrame({"video_id": [p.name for p in used], "split": "test"})
    splits.to_csv(out / "splits.tsv", sep="\t", index=False)
    return pd.DataFrame([p.row() for p in pieces], columns=PIECE_COLUMNS)
