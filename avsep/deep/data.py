"""The deep separator's training data: solo clips at the model's rate with what is seen of
them, mix-and-separate batches (Sound of Pixels), and the fixed validation pairs.

A training example is two solo clips of different instruments, each with a random gain,
summed and divided by the number of sources. The network sees the mixture's log-frequency
log-magnitude and one source's visual input, and learns that source's mask. Every
mixture gives both of its sources as examples. Because the STFT is linear, mixtures are
summed from the clips' STFTs, computed once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import torch

from avsep.deep.spectral import DeepAudio, LogWarp
from avsep.files import FORMAT_VERSION, atomic_path, check_cache
from avsep.transforms import stft

__all__ = ["DeepClips", "write_clips", "read_clips", "MixBatch", "MixSampler", "visual_tensor"]

EPS = 1e-8


@dataclasses.dataclass
class DeepClips:
    """Solo clips of one split.

    Attributes:
        video_ids, labels: per clip.
        label_names: the instruments, sorted (the vision stage's classes).
        audio: per clip, mono float32 at ``sample_rate``.
        visual: per clip, ``(L,)`` class probabilities (``vision``) or ``(n, S, S, 3)``
            uint8 region images (``cnn``).
        visual_times: per clip, the times (s) of its images (``cnn``), or ``[0.0]``.
        visual_kind: ``vision`` or ``cnn``.
    """

    video_ids: list[str]
    labels: list[str]
    label_names: list[str]
    audio: list[np.ndarray]
    visual: list[np.ndarray]
    visual_times: list[np.ndarray]
    visual_kind: str
    sample_rate: int

    def __len__(self) -> int:
        return len(self.video_ids)


def write_clips(path: str | Path, clips: DeepClips, **attrs) -> None:
    """One HDF5 file per split: a group per clip, the settings as attributes."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as h5:
        h5.attrs["format_version"] = FORMAT_VERSION
        h5.attrs["label_names"] = ",".join(clips.label_names)
        h5.attrs["visual_kind"] = clips.visual_kind
        h5.attrs["sample_rate"] = clips.sample_rate
        for key, value in sorted(attrs.items()):
            h5.attrs[key] = value
        for k, v in enumerate(clips.video_ids):
            g = h5.create_group(f"{k:05d}")
            g.attrs["video_id"], g.attrs["label"] = v, clips.labels[k]
            g.create_dataset("audio", data=clips.audio[k], track_times=False)
            g.create_dataset("visual", data=clips.visual[k], track_times=False)
            g.create_dataset("visual_times", data=clips.visual_times[k], track_times=False)


def read_clips(path: str | Path, expect: dict | None = None) -> DeepClips:
    """Read :func:`write_clips`' file; ``expect``: settings it must have been made with."""
    with h5py.File(path, "r") as h5:
        attrs = check_cache(path, dict(h5.attrs), expect, kind="deep training clips")
        groups = [h5[k] for k in sorted(h5.keys())]
        return DeepClips(
            video_ids=[str(g.attrs["video_id"]) for g in groups],
            labels=[str(g.attrs["label"]) for g in groups],
            label_names=str(attrs["label_names"]).split(",") if attrs["label_names"] else [],
            audio=[g["audio"][()] for g in groups],
            visual=[g["visual"][()] for g in groups],
            visual_times=[g["visual_times"][()] for g in groups],
            visual_kind=str(attrs["visual_kind"]),
            sample_rate=int(attrs["sample_rate"]),
        )


def visual_tensor(items: Sequence[np.ndarray], kind: str) -> torch.Tensor:
    """The network's visual input from probability vectors or uint8 images ``(S, S, 3)``."""
    if kind == "vision":
        return torch.from_numpy(np.stack(items).astype(np.float32))
    return torch.from_numpy(np.stack(items)).permute(0, 3, 1, 2).float().div_(255)


@dataclasses.dataclass
class MixBatch:
    """Mixtures and their sources, each source one example (``2B`` rows for ``B`` mixtures,
    a mixture's two sources consecutive).

    Attributes:
        logmag: ``(B, n_log, T)`` the mixture's log-frequency log-magnitude, once per mixture.
        visual: ``2B`` rows, each source's visual input.
        target: ``(2B, n_log, T)`` the source's ratio (clamped to [0, 1]) or binary mask;
            for ``psa``, ``(2B, n_lin, T)`` the phase-sensitive target on the linear grid,
            ``|S| cos(angle S - angle X)`` (Erdogan et al. 2015).
        weight: ``(B, n_log, T)`` log(1 + |mixture|), as Sound of Pixels weights its loss.
        mixture: ``(B, n_lin, T)`` complex, and ``sources`` ``(B, 2, n_lin, T)`` complex (the
            scaled sources as they sit in the mixture), for scoring.
    """

    logmag: torch.Tensor
    visual: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    mixture: torch.Tensor
    sources: torch.Tensor


def log_magnitude(mag_log: torch.Tensor) -> torch.Tensor:
    """The network's input from a log-frequency magnitude."""
    return torch.log(mag_log + 1e-4)


class MixSampler:
    """Mix-and-separate over the clips of one split.

    Pairs are two clips of different instruments, windows of ``audio.clip_frames`` frames
    at random starts, gains uniform in ``[gain_min, gain_max]``, and with ``eq_db`` > 0 each
    source through a random smooth frequency response within that many dB (a spectral tilt
    and a bump: other microphones and rooms than the training videos'); a ``cnn`` source is
    seen through its image nearest the window's middle.
    """

    def __init__(self, clips: DeepClips, audio: DeepAudio, *, target: str = "psa", gain_min: float = 0.5,
                 gain_max: float = 1.5, eq_db: float = 0.0):
        if clips.sample_rate != audio.sample_rate:
            raise ValueError(f"clips at {clips.sample_rate} Hz, the model at {audio.sample_rate} Hz")
        self.clips, self.audio, self.target = clips, audio, target
        self.gain_min, self.gain_max, self.eq_db = gain_min, gain_max, eq_db
        octaves = np.log2(np.maximum(np.arange(audio.n_lin), 1.0))  # 0 at bin 1, 8 at bin 256
        self._octaves = torch.from_numpy((octaves - octaves.mean()).astype(np.float32))
        self.warp = LogWarp(audio.n_lin, audio.log_bins)
        cfg = audio.stft
        self.specs = []
        for a in clips.audio:
            need = (audio.clip_frames - 1) * audio.hop_length
            a = np.pad(a, (0, max(0, need - len(a))))
            self.specs.append(torch.from_numpy(stft(a, cfg)))
        labels = np.asarray(clips.labels)
        if len(set(clips.labels)) < 2:
            raise ValueError(f"mix-and-separate needs clips of two instruments or more; got "
                             f"{', '.join(sorted(set(clips.labels))) or 'none'}")
        self.others = [np.nonzero(labels != lab)[0] for lab in labels]

    def _visual(self, k: int, start: int):
        if self.clips.visual_kind == "vision":
            return self.clips.visual[k]
        middle = (start + self.audio.clip_frames / 2) * self.audio.hop_length / self.audio.sample_rate
        return self.clips.visual[k][int(np.argmin(np.abs(self.clips.visual_times[k] - middle)))]

    def draw(self, gen: torch.Generator, n: int) -> list[tuple[int, int, int, int, float, float]]:
        """``n`` random pairs ``(i, j, start_i, start_j, gain_i, gain_j)``."""
        out = []
        T = self.audio.clip_frames
        for _ in range(n):
            i = int(torch.randint(len(self.specs), (1,), generator=gen))
            others = self.others[i]
            j = int(others[int(torch.randint(len(others), (1,), generator=gen))])
            si = int(torch.randint(self.specs[i].shape[1] - T + 1, (1,), generator=gen))
            sj = int(torch.randint(self.specs[j].shape[1] - T + 1, (1,), generator=gen))
            g = torch.rand(2, generator=gen) * (self.gain_max - self.gain_min) + self.gain_min
            eq = tuple((torch.rand(2, 3, generator=gen) * 2 - 1).flatten().tolist()) if self.eq_db > 0 else None
            out.append((i, j, si, sj, float(g[0]), float(g[1])) + ((eq,) if eq is not None else ()))
        return out

    def _response(self, params: Sequence[float]) -> torch.Tensor:
        """A smooth random frequency response (a microphone's tilt and a bump), within
        ``eq_db`` dB: ``params`` = (tilt, bump gain, bump centre) in [-1, 1]."""
        tilt, bump, centre = params
        octave = self._octaves
        db = self.eq_db * (tilt * octave / 4 + bump * torch.exp(-0.5 * ((octave - 3 * centre) / 1.0) ** 2))
        return (10 ** (db.clamp(-self.eq_db, self.eq_db) / 20))[:, None]

    def fixed_pairs(self, n: int, seed: int) -> list[tuple[int, int, int, int, float, float]]:
        """The validation pairs: seeded, the same in every epoch and run; unit gains."""
        gen = torch.Generator().manual_seed(seed)
        return [(i, j, si, sj, 1.0, 1.0) for i, j, si, sj, *_ in self.draw(gen, n)]

    def batch(self, pairs: Sequence[tuple]) -> MixBatch:
        """The batch of ``pairs`` (:meth:`draw`); a pair's seventh element, when there is one,
        shapes each source's spectrum (:meth:`_response`)."""
        T = self.audio.clip_frames
        rows = []
        for pair in pairs:
            i, j, si, sj, gi, gj = pair[:6]
            a, b = gi * self.specs[i][:, si : si + T], gj * self.specs[j][:, sj : sj + T]
            if len(pair) > 6:
                a, b = a * self._response(pair[6][:3]), b * self._response(pair[6][3:])
            rows.append(torch.stack([a, b]))
        S = torch.stack(rows) / 2  # (B, 2, n_lin, T): each as it sits in the mixture
        M = S.sum(dim=1)
        mag_m = self.warp.warp(M.abs())
        if self.target == "psa":
            target = (S * M[:, None].conj()).real / (M[:, None].abs() + EPS)
        elif self.target == "ratio":
            target = (self.warp.warp(S.abs()) / (mag_m[:, None] + EPS)).clamp(0.0, 1.0)
        else:
            mag_s = self.warp.warp(S.abs())
            target = (mag_s >= mag_s.flip(dims=[1])).float()
        weight = torch.log1p(mag_m).clamp(1e-3, 10.0)
        visual = visual_tensor([self._visual(k, s) for i, j, si, sj, *_ in pairs for k, s in ((i, si), (j, sj))],
                               self.clips.visual_kind)
        B = len(pairs)
        return MixBatch(
            logmag=log_magnitude(mag_m),
            visual=visual,
            target=target.reshape(2 * B, *target.shape[2:]),
            weight=weight,
            mixture=M,
            sources=S,
        )
