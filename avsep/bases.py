"""Stage 3: NMF bases of every chunk of a video's audio, cached in HDF5.

The magnitude STFT is cut into chunks of ``chunk_seconds``; every chunk that is not silent is
factored into M bases by the batched solver (:func:`avsep.nmf.nmf`). The audio is streamed
from the WAV file a group of chunks at a time (:func:`bases_of_file`), so a long video needs
no more memory than a short one. Bases are
scaled to unit L2 norm (activations rescaled to match), so that they compare across chunks.
Silent chunks are marked inactive and never factored: their bases would model noise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import soundfile as sf
import torch

from avsep.files import FORMAT_VERSION, CacheError, atomic_path, check_cache
from avsep.nmf import nmf
from avsep.transforms import STFTConfig, frames_per_chunk, split_chunks, stft_window

__all__ = [
    "NMFConfig",
    "ChunkBases",
    "compute_bases",
    "bases_of_file",
    "chunk_count",
    "write_bases",
    "read_bases",
    "BasesFileError",
]


class BasesFileError(CacheError):
    """A bases file was written with other parameters or by another format version."""


@dataclasses.dataclass(frozen=True)
class NMFConfig:
    """The ``nmf`` block of the config."""

    n_components: int = 25
    loss: str = "kl"
    beta: float = 1.0
    n_iter: int = 200
    tol: float = 1e-4
    seed: int = 0
    chunk_seconds: float = 5.0
    silence_db: float = -60.0

    @property
    def solver_loss(self) -> str | float:
        return self.beta if self.loss == "beta" else self.loss


@dataclasses.dataclass
class ChunkBases:
    """The bases of one video.

    Attributes:
        magnitude: ``(nb_chunks, nb_bins, nb_frames)`` STFT magnitude of every chunk.
        W: ``(nb_chunks, nb_bins, M)``, unit-L2 bases; zeros for silent chunks.
        H: ``(nb_chunks, M, nb_frames)`` activations.
        basis_energy: ``(nb_chunks, M)``, each basis's share of the chunk's magnitude
            (sum over the chunk of ``W_k H_k``).
        start: ``(nb_chunks,)`` chunk start times in seconds.
        energy_db: ``(nb_chunks,)`` RMS level of each chunk's audio, dBFS.
        active: ``(nb_chunks,)`` False for silent chunks.
        objective: ``(nb_chunks,)`` final divergence (0 for silent chunks, which are not factored).
    """

    magnitude: np.ndarray
    W: np.ndarray
    H: np.ndarray
    basis_energy: np.ndarray
    start: np.ndarray
    energy_db: np.ndarray
    active: np.ndarray
    objective: np.ndarray


def chunk_levels_db(audio: np.ndarray, n_chunks: int, chunk_samples: int) -> np.ndarray:
    """RMS level in dBFS of each chunk of ``audio``; digital silence gives -inf clipped to -200."""
    levels = np.empty(n_chunks)
    for c in range(n_chunks):
        seg = audio[c * chunk_samples : (c + 1) * chunk_samples].astype(np.float64)
        rms = np.sqrt(np.mean(seg**2)) if seg.size else 0.0
        levels[c] = 20 * np.log10(max(rms, 1e-10))
    return levels


#: Chunks read, transformed and factored together (160 s of audio at the default 5 s).
#: Memory is bounded by one group whatever the length of the video. Part of the results'
#: definition: the random start of NMF is seeded per group (``seed + group * GROUP_SEED_STEP``).
GROUP_CHUNKS = 32
GROUP_SEED_STEP = 1_000_003


def chunk_count(nb_samples: int, stft_cfg: STFTConfig, nmf_cfg: NMFConfig) -> int:
    """Whole chunks in ``nb_samples`` of audio (the STFT has ``1 + nb_samples // hop`` frames)."""
    return (1 + nb_samples // stft_cfg.hop_length) // frames_per_chunk(nmf_cfg.chunk_seconds, stft_cfg)


def _group(read, nb_samples: int, first: int, count: int, stft_cfg: STFTConfig, nmf_cfg: NMFConfig,
           group: int, device: str) -> ChunkBases:
    """Bases of chunks ``first .. first + count``; ``read(a, b)`` returns samples ``a:b``.

    The STFT frames of the group are those of the whole signal's centred STFT: the segment is
    read with half a window either side (zeros beyond the ends, as the centred STFT pads).
    """
    n, hop, half = frames_per_chunk(nmf_cfg.chunk_seconds, stft_cfg), stft_cfg.hop_length, stft_cfg.n_fft // 2
    lo = first * n * hop - half
    hi = (first + count) * n * hop - hop - half + stft_cfg.n_fft
    seg_end = max(hi, (first + count) * n * hop)
    seg = np.zeros(seg_end - lo, np.float32)
    a, b = max(lo, 0), min(seg_end, nb_samples)
    if b > a:
        seg[a - lo : b - lo] = read(a, b)
    if not np.isfinite(seg).all():
        raise ValueError(f"audio holds NaN or Inf samples between {a / stft_cfg.sample_rate:.2f} s "
                         f"and {b / stft_cfg.sample_rate:.2f} s")
    spec = torch.stft(torch.from_numpy(seg[: hi - lo]), stft_cfg.n_fft, hop, window=stft_window(stft_cfg),
                      center=False, return_complex=True)
    chunks = split_chunks(spec.abs().numpy().astype(np.float32), n)
    # The group's own samples (the last chunk may run past the end of the audio by a hop).
    start = first * n * hop
    levels = chunk_levels_db(seg[start - lo : min(start + count * n * hop, nb_samples) - lo], count, n * hop)
    active = levels > nmf_cfg.silence_db
    F, M = stft_cfg.n_bins, nmf_cfg.n_components
    W = np.zeros((count, F, M), np.float32)
    H = np.zeros((count, M, n), np.float32)
    objective = np.zeros(count, np.float32)
    if active.any():
        V = torch.from_numpy(np.ascontiguousarray(chunks[active])).to(device)
        result = nmf(V, M, loss=nmf_cfg.solver_loss, n_iter=nmf_cfg.n_iter, tol=nmf_cfg.tol,
                     seed=nmf_cfg.seed + group * GROUP_SEED_STEP)
        norms = result.W.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (B, 1, M)
        W[active] = (result.W / norms).cpu().numpy()
        H[active] = (result.H * norms.transpose(1, 2)).cpu().numpy()
        objective[active] = result.objective.cpu().numpy()
    return ChunkBases(
        magnitude=chunks,
        W=W,
        H=H,
        basis_energy=(W.sum(axis=1) * H.sum(axis=2)).astype(np.float32),
        start=np.arange(first, first + count) * n * hop / stft_cfg.sample_rate,
        energy_db=levels.astype(np.float32),
        active=active,
        objective=objective,
    )


def _groups(read, nb_samples, stft_cfg, nmf_cfg, device, progress=None):
    C = chunk_count(nb_samples, stft_cfg, nmf_cfg)
    for g, first in enumerate(range(0, C, GROUP_CHUNKS)):
        count = min(GROUP_CHUNKS, C - first)
        yield first, _group(read, nb_samples, first, count, stft_cfg, nmf_cfg, g, device)
        if progress:
            progress(first + count, C)


def compute_bases(audio: np.ndarray, stft_cfg: STFTConfig, nmf_cfg: NMFConfig, *, device: str = "cpu") -> ChunkBases:
    """Factor every non-silent chunk of ``audio`` (mono, ``(nb_samples,)``), in memory.

    Gives the same bases as :func:`bases_of_file` on the same audio.
    """
    audio = np.asarray(audio, dtype=np.float32)
    parts = [b for _, b in _groups(lambda a, b: audio[a:b], len(audio), stft_cfg, nmf_cfg, device)]
    if not parts:
        return _empty_bases(stft_cfg, nmf_cfg)
    return ChunkBases(**{
        f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(ChunkBases)
    })


def _empty_bases(stft_cfg: STFTConfig, nmf_cfg: NMFConfig) -> ChunkBases:
    n, F, M = frames_per_chunk(nmf_cfg.chunk_seconds, stft_cfg), stft_cfg.n_bins, nmf_cfg.n_components
    return ChunkBases(np.zeros((0, F, n), np.float32), np.zeros((0, F, M), np.float32),
                      np.zeros((0, M, n), np.float32), np.zeros((0, M), np.float32), np.zeros(0),
                      np.zeros(0, np.float32), np.zeros(0, bool), np.zeros(0, np.float32))


def bases_params(stft_cfg: STFTConfig, nmf_cfg: NMFConfig) -> dict:
    """The parameters that determine a bases file, as stored in its attributes."""
    params = {f"stft_{k}": v for k, v in dataclasses.asdict(stft_cfg).items()}
    params.update({f"nmf_{k}": v for k, v in dataclasses.asdict(nmf_cfg).items()})
    return params


def _create(h5: h5py.File, name: str, shape: tuple, dtype) -> h5py.Dataset:
    if len(shape) == 3:
        # One HDF5 chunk per audio chunk: written group by group, read chunk by chunk.
        return h5.create_dataset(name, shape=shape, dtype=dtype, chunks=(1, *shape[1:]) if shape[0] else None,
                                 compression="gzip", compression_opts=1, track_times=False)
    return h5.create_dataset(name, shape=shape, dtype=dtype, track_times=False)


def _write_attrs(h5: h5py.File, params: dict) -> None:
    h5.attrs["format_version"] = FORMAT_VERSION
    for key, value in sorted(params.items()):
        h5.attrs[key] = value


def write_bases(path: str | Path, bases: ChunkBases, params: dict, **extra) -> None:
    """Write a bases file atomically; ``params`` and ``extra`` become attributes."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            for field in dataclasses.fields(ChunkBases):
                data = getattr(bases, field.name)
                _create(h5, field.name, data.shape, data.dtype)[...] = data
            _write_attrs(h5, {**params, **extra})


def bases_of_file(wav: str | Path, path: str | Path, stft_cfg: STFTConfig, nmf_cfg: NMFConfig, *,
                  device: str = "cpu", progress=None, **extra) -> ChunkBases:
    """Compute and write the bases of a mono WAV file, streaming.

    The audio is read, transformed and factored :data:`GROUP_CHUNKS` chunks at a time and
    written as it goes, so memory does not grow with the length of the file. The file is
    renamed into place only when complete.

    Args:
        progress: called with ``(chunks done, chunks)`` after each group.
        extra: more attributes for the file (e.g. ``source``).

    Returns:
        The small per-chunk arrays (``magnitude``, ``W`` and ``H`` left empty).
    """
    with sf.SoundFile(str(wav)) as f:
        if f.channels != 1:
            raise ValueError(f"{wav}: {f.channels} channels; the bases stage reads mono audio")
        if f.samplerate != stft_cfg.sample_rate:
            raise ValueError(f"{wav} is at {f.samplerate} Hz, the config says {stft_cfg.sample_rate}")
        total = f.frames

        def read(a, b):
            f.seek(a)
            return f.read(b - a, dtype="float32")

        C = chunk_count(total, stft_cfg, nmf_cfg)
        n, F, M = frames_per_chunk(nmf_cfg.chunk_seconds, stft_cfg), stft_cfg.n_bins, nmf_cfg.n_components
        small = {name: [] for name in ("basis_energy", "start", "energy_db", "active", "objective")}
        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as h5:
                big = {
                    "magnitude": _create(h5, "magnitude", (C, F, n), np.float32),
                    "W": _create(h5, "W", (C, F, M), np.float32),
                    "H": _create(h5, "H", (C, M, n), np.float32),
                }
                for first, part in _groups(read, total, stft_cfg, nmf_cfg, device, progress):
                    for name, ds in big.items():
                        ds[first : first + len(part.active)] = getattr(part, name)
                    for name, values in small.items():
                        values.append(getattr(part, name))
                empty = _empty_bases(stft_cfg, nmf_cfg)
                arrays = {name: np.concatenate(v) if v else getattr(empty, name) for name, v in small.items()}
                for name, data in arrays.items():
                    _create(h5, name, data.shape, data.dtype)[...] = data
                _write_attrs(h5, {**bases_params(stft_cfg, nmf_cfg), **extra})
    return ChunkBases(magnitude=empty.magnitude, W=empty.W, H=empty.H, **arrays)


def read_bases(path: str | Path, *, expect: dict | None = None, magnitude: bool = False) -> tuple[ChunkBases, dict]:
    """Read a bases file, checking its format version and, with ``expect``, its parameters.

    Args:
        expect: parameters the file must carry (as made by :func:`bases_params`).
        magnitude: also load the (large) magnitude chunks; otherwise an empty array.

    Raises:
        BasesFileError: naming the file and each parameter that differs.
    """
    with h5py.File(path, "r") as h5:
        try:
            attrs = check_cache(path, dict(h5.attrs), expect, kind="bases")
        except CacheError as err:
            raise BasesFileError(str(err)) from None
        data = {
            f.name: (h5[f.name][()] if (f.name != "magnitude" or magnitude) else np.empty((0,), np.float32))
            for f in dataclasses.fields(ChunkBases)
        }
    return ChunkBases(**data), attrs
