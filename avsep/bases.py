"""Stage 4: NMF bases of every chunk of a video's audio, cached in HDF5.

The magnitude STFT is cut into chunks of ``chunk_seconds``; every chunk that is not silent is
factored into M bases at once by the batched solver (:func:`avsep.nmf.nmf`). Bases are
scaled to unit L2 norm (activations rescaled to match), so that they compare across chunks.
Silent chunks are marked inactive and never factored: their bases would model noise.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import torch

from avsep.files import FORMAT_VERSION, atomic_path
from avsep.nmf import nmf
from avsep.transforms import STFTConfig, frames_per_chunk, split_chunks, stft

__all__ = ["NMFConfig", "ChunkBases", "compute_bases", "write_bases", "read_bases", "BasesFileError"]


class BasesFileError(ValueError):
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
        objective: ``(nb_chunks,)`` final divergence (NaN for silent chunks).
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


def compute_bases(audio: np.ndarray, stft_cfg: STFTConfig, nmf_cfg: NMFConfig, *, device: str = "cpu") -> ChunkBases:
    """Factor every non-silent chunk of ``audio`` (mono, ``(nb_samples,)``)."""
    n = frames_per_chunk(nmf_cfg.chunk_seconds, stft_cfg)
    mag = np.abs(stft(audio, stft_cfg)).astype(np.float32)
    chunks = split_chunks(mag, n)
    C, F, M = chunks.shape[0], stft_cfg.n_bins, nmf_cfg.n_components
    levels = chunk_levels_db(audio, C, n * stft_cfg.hop_length)
    active = levels > nmf_cfg.silence_db
    W = np.zeros((C, F, M), np.float32)
    H = np.zeros((C, M, n), np.float32)
    objective = np.full(C, np.nan, np.float32)
    if active.any():
        V = torch.from_numpy(np.ascontiguousarray(chunks[active])).to(device)
        result = nmf(V, M, loss=nmf_cfg.solver_loss, n_iter=nmf_cfg.n_iter, tol=nmf_cfg.tol, seed=nmf_cfg.seed)
        norms = result.W.norm(dim=1, keepdim=True).clamp_min(1e-12)  # (B, 1, M)
        W[active] = (result.W / norms).cpu().numpy()
        H[active] = (result.H * norms.transpose(1, 2)).cpu().numpy()
        objective[active] = result.objective.cpu().numpy()
    basis_energy = W.sum(axis=1) * H.sum(axis=2)
    return ChunkBases(
        magnitude=chunks.astype(np.float32),
        W=W,
        H=H,
        basis_energy=basis_energy.astype(np.float32),
        start=np.arange(C) * n * stft_cfg.hop_length / stft_cfg.sample_rate,
        energy_db=levels.astype(np.float32),
        active=active,
        objective=objective,
    )


def bases_params(stft_cfg: STFTConfig, nmf_cfg: NMFConfig) -> dict:
    """The parameters that determine a bases file, as stored in its attributes."""
    params = {f"stft_{k}": v for k, v in dataclasses.asdict(stft_cfg).items()}
    params.update({f"nmf_{k}": v for k, v in dataclasses.asdict(nmf_cfg).items()})
    return params


def write_bases(path: str | Path, bases: ChunkBases, params: dict, **extra) -> None:
    """Write a bases file atomically; ``params`` and ``extra`` become attributes."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            for field in dataclasses.fields(ChunkBases):
                data = getattr(bases, field.name)
                h5.create_dataset(field.name, data=data, track_times=False,
                                  **({"compression": "gzip", "compression_opts": 1} if data.ndim == 3 else {}))
            h5.attrs["format_version"] = FORMAT_VERSION
            for key, value in sorted({**params, **extra}.items()):
                h5.attrs[key] = value


def read_bases(path: str | Path, *, expect: dict | None = None, magnitude: bool = False) -> tuple[ChunkBases, dict]:
    """Read a bases file, checking its format version and, with ``expect``, its parameters.

    Args:
        expect: parameters the file must carry (as made by :func:`bases_params`).
        magnitude: also load the (large) magnitude chunks; otherwise an empty array.

    Raises:
        BasesFileError: naming the file and each parameter that differs.
    """
    with h5py.File(path, "r") as h5:
        attrs = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in h5.attrs.items()}
        if attrs.get("format_version") != FORMAT_VERSION:
            raise BasesFileError(
                f"{path}: written by bases format {attrs.get('format_version')}, this avsep reads "
                f"{FORMAT_VERSION}; delete it to recompute"
            )
        if expect:
            wrong = [f"{k}={attrs.get(k)!r} (expected {v!r})" for k, v in expect.items() if attrs.get(k) != v]
            if wrong:
                raise BasesFileError(f"{path}: made with other parameters: {', '.join(wrong)}; delete it to recompute")
        data = {
            f.name: (h5[f.name][()] if (f.name != "magnitude" or magnitude) else np.empty((0,), np.float32))
            for f in dataclasses.fields(ChunkBases)
        }
    return ChunkBases(**data), attrs
