"""Atomic, self-describing output files.

Every file the pipeline writes goes to a temporary name in the same folder first and is
renamed into place only once complete, so a killed job never leaves a file that looks
finished. Files carry the parameters that made them (HDF5 attributes, a JSON block).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import soundfile as sf
from scipy.io import wavfile

from avsep.errors import InputError

__all__ = [
    "atomic_path",
    "atomic_dir",
    "write_wav",
    "read_wav",
    "read_mono",
    "resample",
    "write_json",
    "write_frames",
    "write_frame_stream",
    "read_frames",
    "write_table",
    "save_torch",
    "read_checkpoint",
    "state_dict_of",
    "read_weights",
    "FORMAT_VERSION",
    "CacheError",
    "check_cache",
]

#: Version of the HDF5 layouts written by avsep; bumped when a layout or what a cache means
#: changes. 2: bases streamed in groups of chunks, NMF seeded per group.
FORMAT_VERSION = 2


class CacheError(InputError, ValueError):
    """A cached file was written by another format version or with other parameters."""


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def check_cache(path: str | Path, attrs: dict, expect: dict | None = None, *, kind: str = "cache") -> dict:
    """Check a cache file's attributes: the format version, and the parameters in ``expect``.

    Returns:
        The attributes as plain Python values.

    Raises:
        CacheError: naming the file and each mismatch, and saying to delete it to recompute.
    """
    attrs = {k: _plain(v) for k, v in attrs.items()}
    version = attrs.get("format_version")
    if version != FORMAT_VERSION:
        raise CacheError(
            f"{path}: written by {kind} format {version}, this avsep reads {FORMAT_VERSION}; "
            "delete it (or run with --forcerun on its rule) to recompute"
        )
    wrong = [f"{k}={attrs.get(k)!r} (expected {v!r})" for k, v in (expect or {}).items() if attrs.get(k) != v]
    if wrong:
        raise CacheError(
            f"{path}: made with other parameters: {', '.join(wrong)}; delete it (or run with "
            "--forcerun on its rule) to recompute"
        )
    return attrs


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary name keeps the suffix so that tools choosing a format by extension
    (soundfile, ffmpeg) still do the right thing. On error it is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path.parent, f".{path.stem}.{'?' * 8}.tmp{path.suffix}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file private (0600); give it the permissions of a plain open().
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _remove_stale(folder: Path, pattern: str) -> None:
    """Remove what a killed writer of the same output left (SIGKILL skips every cleanup).
    Snakemake never runs two jobs for one output, so no live writer owns these. ``?`` x 8
    matches tempfile's random part only, so ``a.b.h5``'s temporary is not ``a.h5``'s."""
    for stale in folder.glob(pattern.replace("[", "[[]")):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; move it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path.parent, f".{path.name}.{'?' * 8}.tmp")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float32 audio, shape ``(nb_samples,)``, as a 32-bit float WAV."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"write_wav expects mono audio of shape (nb_samples,), got {audio.shape}")
    with atomic_path(path) as tmp:
        # scipy writes a plain IEEE-float WAV; libsndfile would add a PEAK chunk holding the
        # write time, and the bytes would differ from one run to the next.
        wavfile.write(tmp, int(sample_rate), audio)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV file as float32; returns ``(audio, sample_rate)``, audio ``(nb_samples,)``
    for mono or ``(nb_samples, nb_channels)`` otherwise."""
    audio, sr = sf.read(str(path), dtype="float32", always_2d=False)
    return audio, int(sr)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """``audio`` (1-D) from ``orig_sr`` to ``target_sr``: ``librosa.resample``'s default
    (soxr at its high quality, the length fixed to ``ceil(n * target_sr / orig_sr)``), the
    same samples (tested), called on soxr directly. Reaching it through librosa imports
    librosa's core and numba, about 2 s per job, which a short job (one mixture's deep
    separation) spent more on than on its work."""
    if orig_sr == target_sr:
        return audio
    import soxr

    audio = np.asarray(audio)
    if audio.ndim != 1 or not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"resample takes 1-D floating-point audio, got {audio.dtype} of shape {audio.shape}")
    if not np.isfinite(audio).all():
        raise ValueError("resample: the audio is not finite everywhere")
    n = int(np.ceil(audio.shape[0] * float(target_sr) / orig_sr))
    out = soxr.resample(audio, orig_sr, target_sr, quality="soxr_hq")
    out = out[:n] if len(out) >= n else np.pad(out, (0, n - len(out)))
    return np.asarray(out, dtype=audio.dtype)


def read_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """A WAV file as mono float32 at ``sample_rate``: channels averaged, resampled
    (:func:`resample`) where the file's rate differs."""
    audio, rate = read_wav(path)
    audio = audio.mean(axis=1) if audio.ndim > 1 else audio
    return np.asarray(resample(audio, rate, sample_rate), np.float32)


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON with sorted keys (stable across runs)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_frames(path: str | Path, frames: np.ndarray, timestamps: np.ndarray, **attrs) -> None:
    """Store sampled frames of one video in one HDF5 file.

    Args:
        frames: uint8, shape ``(nb_frames, height, width, 3)``.
        timestamps: float64, shape ``(nb_frames,)``, seconds.
        **attrs: parameters recorded as file attributes (numbers or strings).
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    if len(timestamps) != len(frames):
        raise ValueError(f"{len(timestamps)} timestamps for {len(frames)} frames")
    with atomic_path(path) as tmp:
        # track_times=False keeps the bytes identical from one run to the next.
        with h5py.File(tmp, "w", track_order=True) as h5:
            h5.create_dataset(
                "frames",
                data=frames,
                chunks=(1, *frames.shape[1:]),
                compression="gzip",
                compression_opts=1,
                track_times=False,
            )
            h5.create_dataset("timestamps", data=np.asarray(timestamps, np.float64), track_times=False)
            h5.attrs["format_version"] = FORMAT_VERSION
            for key, value in sorted(attrs.items()):
                h5.attrs[key] = value


def write_frame_stream(path: str | Path, batches, *, fps: float, **attrs) -> int:
    """Store a video's frames as they come, a batch at a time, in the file
    :func:`write_frames` writes: the same datasets and attributes, frame ``i`` at
    ``i / fps`` seconds, so memory holds one batch, never the whole video.

    Args:
        batches: uint8 arrays ``(n, height, width, 3)`` of one frame size, e.g.
            :func:`avsep.media.iter_frames`.
        fps: the sampling rate, stored as the ``fps`` attribute with ``attrs``.

    Returns:
        The number of frames written.
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as h5:
            frames = None
            n = 0
            for batch in batches:
                batch = np.asarray(batch)
                if batch.ndim != 4 or batch.shape[-1] != 3 or batch.dtype != np.uint8:
                    raise ValueError(f"frames must be uint8 (N, H, W, 3), got {batch.dtype} {batch.shape}")
                if frames is None:
                    frames = h5.create_dataset(
                        "frames", shape=(0, *batch.shape[1:]), maxshape=(None, *batch.shape[1:]), dtype=np.uint8,
                        chunks=(1, *batch.shape[1:]), compression="gzip", compression_opts=1, track_times=False)
                elif batch.shape[1:] != frames.shape[1:]:
                    raise ValueError(f"a batch of {batch.shape[1:]} frames after {frames.shape[1:]}")
                frames.resize(n + len(batch), axis=0)
                frames[n:] = batch
                n += len(batch)
            if frames is None:
                raise ValueError("no frames to write")
            h5.create_dataset("timestamps", data=np.arange(n, dtype=np.float64) / float(fps), track_times=False)
            h5.attrs["format_version"] = FORMAT_VERSION
            for key, value in sorted({**attrs, "fps": fps}.items()):
                h5.attrs[key] = value
    return n


def read_frames(path: str | Path, expect: dict | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Read a frames file; returns ``(frames, timestamps, attrs)``.

    Args:
        expect: attributes the file must carry, e.g. ``{"fps": 1.0}``; ``width`` and
            ``height`` are checked against the frames' shape.

    Raises:
        CacheError: another format version, or other parameters than ``expect``.
    """
    with h5py.File(path, "r") as h5:
        _, height, width, _ = h5["frames"].shape
        attrs = check_cache(path, {**h5.attrs, "height": height, "width": width}, expect, kind="frames")
        return h5["frames"][()], h5["timestamps"][()], attrs


def write_table(path: str | Path, table) -> None:
    """Write a pandas DataFrame as a tab-separated file without the index."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")


def save_torch(path: str | Path, obj) -> None:
    """``torch.save`` atomically and byte-for-byte reproducibly: through a buffer, because
    ``torch.save`` names its archive after the file it writes (here a random temporary name)."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def read_checkpoint(path: str | Path, key: str = "vision.weights"):
    """Read a local PyTorch checkpoint (whatever it holds) for the config key ``key``.

    Raises:
        InputError: the file is missing or is not a PyTorch checkpoint.
    """
    import torch

    from avsep.errors import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{key}: {path} does not exist (weights are never downloaded; give a local file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # a truncated or foreign file
        raise InputError(f"{key}: cannot read {path} as a PyTorch checkpoint ({err})") from None


def state_dict_of(checkpoint) -> dict:
    """The state dict of a checkpoint: bare, or under ``"state_dict"``."""
    return checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint


def read_weights(path: str | Path, key: str = "vision.weights") -> dict:
    """Read a local state dict (bare, or under ``"state_dict"``) for the config key ``key``.

    Raises:
        InputError: the file is missing or is not a PyTorch checkpoint.
    """
    return state_dict_of(read_checkpoint(path, key))
