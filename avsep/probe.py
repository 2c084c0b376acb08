"""An audio probe: an instrument classifier, trained on audio clips, that names the
instrument of a separated track without the network that chose the bases.

The MIML network (:mod:`avsep.miml`) both picks the key bases of ``miml_nmf`` and, through
:func:`avsep.miml.predict_instrument`, can name the instrument of a separated track: a
judge trained with the method it judges. The probe is the independent judge of the AudioSep
downstream protocol: frozen audio features, standardised with the training clips'
statistics, then a linear classifier or a 3-layer MLP trained on solo clips. It shares no
parameters with any separation method.

- Features. :func:`logmel_stats`: a log-mel spectrogram (librosa) summarised by the mean and
  the standard deviation of every band over the clip; it needs no weights and no training,
  so a probe on it is independent of every separator. :func:`miml_embedding`: the MIML
  network's per-basis embedding (the output of its shared per-basis MLP, before the
  sub-concept layer and the pooling to labels) pooled over a clip's NMF bases. The MIML
  network was trained on the bases of the same training videos that gave ``miml_nmf`` its
  dictionaries, so a probe on this feature shares training data with ``miml_nmf`` and is
  no independent judge of that method; it shows what the MIML representation knows.
- Clips. A track is cut into non-overlapping clips of :data:`CLIP_SECONDS`
  (:func:`cut_clips`); every clip is one training example, and a track's prediction is the
  mean of its clips' probabilities (:func:`predict_track`).
- Training (:func:`train_probe`). A ``StandardScaler`` fitted on the training clips only;
  then ``linear`` (one ``nn.Linear``) or ``mlp`` (Linear-ReLU-Linear-ReLU-Linear, hidden
  width :data:`MLP_HIDDEN`), trained with cross-entropy and Adam, seeded. After every epoch
  the validation clips are scored; the epoch with the best validation accuracy (ties: the
  lower validation loss) is kept, and training stops when ``patience`` epochs in a row have
  not bettered it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
from torch import nn

from avsep.errors import InputError

if TYPE_CHECKING:
    from avsep.bases import NMFConfig
    from avsep.miml import MIMLNet
    from avsep.transforms import STFTConfig

__all__ = [
    "CLIP_SECONDS",
    "MLP_HIDDEN",
    "PROBE_KINDS",
    "POOLINGS",
    "clip_starts",
    "cut_clips",
    "clip_levels_db",
    "logmel_stats",
    "logmel_clips",
    "basis_embeddings",
    "pool_basis_embeddings",
    "miml_embedding",
    "miml_clips",
    "Probe",
    "train_probe",
    "load_probe",
    "probe_accuracy",
    "probe_confusion",
    "predict_track",
    "FEATURES",
    "track_features",
    "name_tracks",
]

#: Clip length in seconds: the default ``nmf.chunk_seconds``, so that a clip's MIML
#: embedding is the bag of exactly one NMF chunk, as the MIML network was trained on; a
#: 10-s test mixture gives two clips per separated track.
CLIP_SECONDS = 5.0

#: Hidden width of the ``mlp`` probe (as in the AudioSep downstream protocol).
MLP_HIDDEN = 256

PROBE_KINDS = ("linear", "mlp")

#: How :func:`pool_basis_embeddings` pools the per-basis embeddings over the bases.
POOLINGS = ("mean", "max")

#: Power floor of the log-mel spectrogram (-100 dB): silence gives finite features.
LOG_FLOOR = 1e-10

#: RMS below which a clip counts as silent and is not level-normalised (-80 dBFS).
SILENCE_RMS = 1e-4

#: Bump when the layout of a saved probe changes.
PROBE_FORMAT = 1


# --- clips -----------------------------------------------------------------------------------


def clip_starts(n_samples: int, sample_rate: int, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """Start samples of the non-overlapping clips of ``seconds`` in ``n_samples`` of audio.

    A tail shorter than a clip is dropped, but there is always at least one clip: audio
    shorter than one clip is one clip of its own length (:func:`cut_clips`).

    Args:
        n_samples: length of the audio in samples (at least 1).
        sample_rate: Hz.
        seconds: clip length in seconds.

    Returns:
        ``(nb_clips,)`` int64 start samples.
    """
    if n_samples < 1:
        raise InputError("the audio has no samples: a probe needs at least one clip")
    if sample_rate <= 0 or seconds <= 0:
        raise InputError(f"sample_rate and clip seconds must be positive, got {sample_rate} Hz and {seconds} s")
    length = int(round(seconds * sample_rate))
    return np.arange(max(1, n_samples // max(1, length)), dtype=np.int64) * length


def cut_clips(wave: np.ndarray, sample_rate: int, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """Cut mono audio into non-overlapping clips of ``seconds`` (see :func:`clip_starts`).

    Args:
        wave: ``(nb_samples,)``.

    Returns:
        ``(nb_clips, clip_samples)``, where ``clip_samples`` is ``seconds * sample_rate``
        rounded, or ``nb_samples`` when the audio is shorter than one clip.
    """
    wave = _mono(wave)
    starts = clip_starts(len(wave), sample_rate, seconds)
    length = min(int(round(seconds * sample_rate)), len(wave))
    return np.stack([wave[s : s + length] for s in starts])


def clip_levels_db(wave: np.ndarray, sample_rate: int, seconds: float = CLIP_SECONDS) -> np.ndarray:
    """RMS level in dBFS of every clip of :func:`cut_clips` (digital silence: -200), as the
    bases stage measures its chunks (:func:`avsep.bases.chunk_levels_db`): compare it with
    ``nmf.silence_db`` to leave silent clips out of a probe's training and test sets.

    Returns:
        ``(nb_clips,)``.
    """
    from avsep.bases import chunk_levels_db

    clips = cut_clips(wave, sample_rate, seconds)
    return chunk_levels_db(clips.reshape(-1), len(clips), clips.shape[1])


def _mono(wave: np.ndarray) -> np.ndarray:
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise InputError(f"expected mono audio of shape (nb_samples,), got shape {wave.shape}")
    if not np.isfinite(wave).all():
        raise InputError("the audio holds NaN or Inf samples")
    return wave


# --- features ----------------------------------------------------------------------------


def logmel_stats(
    wave: np.ndarray,
    sample_rate: int,
    *,
    n_mels: int = 64,
    n_fft: int = 1024,
    hop: int = 512,
    fmin: float = 50.0,
    normalize: bool = True,
) -> np.ndarray:
    """Per-band mean and standard deviation of a clip's log-mel spectrogram.

    The power mel spectrogram (Hann window, centred frames, Slaney mel filters: librosa's
    ``melspectrogram`` with ``pad_mode="constant"``, to float precision; a test checks it) is
    converted to dB with a floor of :data:`LOG_FLOOR` (-100 dB), so a silent clip gives
    -100 dB means and zero deviations rather than NaN. A clip shorter than one window is
    zero-padded to ``n_fft``. With ``normalize`` the clip is first scaled to unit RMS (unless
    it is silent, RMS below :data:`SILENCE_RMS`): a separated track is often quieter than
    the solo clips the probe was trained on, and loudness says nothing of the instrument.

    Args:
        wave: ``(nb_samples,)`` mono audio.
        sample_rate: Hz.
        n_mels: mel bands, from ``fmin`` to ``sample_rate / 2``.
        n_fft: window length in samples (1024: 46 ms at 22.05 kHz).
        hop: samples between frames.
        fmin: lowest mel frequency in Hz.
        normalize: scale the clip to unit RMS first.

    Returns:
        ``(2 * n_mels,)`` float32: the ``n_mels`` band means (dB), then the ``n_mels`` band
        standard deviations (dB).
    """
    wave = _mono(wave)
    if len(wave) == 0:
        raise InputError("the clip has no samples")
    if n_mels < 1 or n_fft < 16 or hop < 1:
        raise InputError(f"n_mels must be >= 1, n_fft >= 16 and hop >= 1, got {n_mels}, {n_fft}, {hop}")
    rms = float(np.sqrt(np.mean(wave.astype(np.float64) ** 2)))
    if normalize and rms > SILENCE_RMS:
        wave = wave / np.float32(rms)
    if len(wave) < n_fft:
        wave = np.pad(wave, (0, n_fft - len(wave)))
    padded = np.pad(wave.astype(np.float64), n_fft // 2)  # centred frames, zeros beyond the ends
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    power = np.abs(np.fft.rfft(frames * _hann(n_fft), axis=1)) ** 2  # (frames, n_fft // 2 + 1)
    mel = _mel_filters(sample_rate, n_fft, n_mels, fmin) @ power.T
    db = 10.0 * np.log10(np.maximum(mel, LOG_FLOOR))
    return np.concatenate([db.mean(axis=1), db.std(axis=1)]).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _hann(n: int) -> np.ndarray:
    """The periodic Hann window (as ``scipy.signal.get_window("hann", n)``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def _hz_to_mel(hz):
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    linear = hz / (200.0 / 3)
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), linear)


def _mel_to_hz(mel):
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


@functools.lru_cache(maxsize=8)
def _mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float) -> np.ndarray:
    """Triangular mel filters ``(n_mels, n_fft // 2 + 1)`` from ``fmin`` to Nyquist, each of
    unit area (Slaney's normalisation): the filter bank of ``librosa.filters.mel``'s
    defaults, written out so that a probe needs neither librosa nor its start-up time."""
    bins = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def logmel_clips(wave: np.ndarray, sample_rate: int, *, seconds: float = CLIP_SECONDS, **mel) -> np.ndarray:
    """:func:`logmel_stats` of every clip of a track (:func:`cut_clips`).

    Args:
        wave: ``(nb_samples,)`` mono audio.
        mel: keyword arguments of :func:`logmel_stats`.

    Returns:
        ``(nb_clips, 2 * n_mels)`` float32.
    """
    return np.stack([logmel_stats(clip, sample_rate, **mel) for clip in cut_clips(wave, sample_rate, seconds)])


def basis_embeddings(model: "MIMLNet", bags: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """The MIML network's per-basis embeddings: its shared per-basis MLP applied to every
    basis, before the sub-concept layer and the max/softmax pooling to labels.

    Args:
        model: a :class:`~avsep.miml.MIMLNet` (switched to eval mode: no dropout, BatchNorm
            with its running statistics).
        bags: ``(nb_bags, M, F)`` max-normalized bases (:func:`avsep.miml.normalize_bases`).

    Returns:
        ``(nb_bags, M, D)`` float32, D the last hidden width of the network (``F`` when it
        has no hidden layer).
    """
    bags = np.asarray(bags, dtype=np.float32)
    n_bins = model.sub_concepts.in_features if not len(model.basis_mlp) else model.basis_mlp[0].in_features
    if bags.ndim != 3 or bags.shape[2] != n_bins:
        raise InputError(f"bags must have shape (nb_bags, M, {n_bins}) for this MIML network, got {bags.shape}")
    B, M, F = bags.shape
    dim = model.sub_concepts.in_features
    if B * M == 0:
        return np.zeros((B, M, dim), np.float32)
    model.eval()
    with torch.no_grad():
        h = model.basis_mlp(torch.from_numpy(bags.reshape(B * M, F)).to(device))
    return h.cpu().numpy().reshape(B, M, dim)


def _check_pooling(pooling: Sequence[str]) -> None:
    if isinstance(pooling, str) or not pooling or any(p not in POOLINGS for p in pooling):
        raise InputError(f"pooling must be a non-empty list of {POOLINGS}, got {pooling!r}")


def pool_basis_embeddings(embeddings: np.ndarray, pooling: Sequence[str] = POOLINGS) -> np.ndarray:
    """Pool per-basis embeddings over the bases.

    Args:
        embeddings: ``(..., nb_bases, D)``.
        pooling: any of ``mean`` and ``max``, concatenated in this order.

    Returns:
        ``(..., D * len(pooling))``.
    """
    _check_pooling(pooling)
    if embeddings.shape[-2] == 0:
        raise InputError("no bases to pool")
    parts = {"mean": lambda e: e.mean(axis=-2), "max": lambda e: e.max(axis=-2)}
    return np.concatenate([parts[p](embeddings) for p in pooling], axis=-1).astype(np.float32)


def miml_embedding(
    model: "MIMLNet",
    wave: np.ndarray,
    stft_cfg: "STFTConfig",
    nmf_cfg: "NMFConfig",
    *,
    pooling: Sequence[str] = POOLINGS,
    device: str = "cpu",
) -> np.ndarray:
    """The MIML network's per-basis embedding pooled over a clip's NMF bases.

    The clip is factored as the training videos were (:func:`avsep.bases.compute_bases`, a
    clip shorter than ``nmf_cfg.chunk_seconds`` is one chunk of its own length, as in
    :func:`avsep.miml.predict_instrument`); the bases of its non-silent chunks are
    max-normalized, embedded (:func:`basis_embeddings`) and pooled over all of them
    (:func:`pool_basis_embeddings`). A clip whose chunks are all silent gives zeros.

    This feature shares training data with ``miml_nmf``: the network was trained on the
    bases of the training videos whose key bases are ``miml_nmf``'s dictionaries.

    Args:
        model: the trained MIML network (:func:`avsep.miml.load_model`).
        wave: ``(nb_samples,)`` mono audio at ``stft_cfg.sample_rate``.
        stft_cfg, nmf_cfg: the settings the network's bases were computed with.
        pooling: see :func:`pool_basis_embeddings`.

    Returns:
        ``(D * len(pooling),)`` float32.
    """
    from avsep.bases import compute_bases
    from avsep.miml import normalize_bases

    wave = _mono(wave)
    if len(wave) == 0:
        raise InputError("the clip has no samples")
    _check_pooling(pooling)
    seconds = len(wave) / stft_cfg.sample_rate
    if seconds < nmf_cfg.chunk_seconds:
        nmf_cfg = dataclasses.replace(nmf_cfg, chunk_seconds=seconds)
    bases = compute_bases(wave, stft_cfg, nmf_cfg, device=device)
    dim = model.sub_concepts.in_features
    if not bases.active.any():
        return np.zeros(dim * len(pooling), np.float32)
    emb = basis_embeddings(model, normalize_bases(bases.W[bases.active]), device=device)
    return pool_basis_embeddings(emb.reshape(-1, dim), pooling)


def miml_clips(
    model: "MIMLNet",
    wave: np.ndarray,
    stft_cfg: "STFTConfig",
    nmf_cfg: "NMFConfig",
    *,
    seconds: float = CLIP_SECONDS,
    pooling: Sequence[str] = POOLINGS,
    device: str = "cpu",
) -> np.ndarray:
    """:func:`miml_embedding` of every clip of a track (:func:`cut_clips`), each clip
    factored on its own.

    Returns:
        ``(nb_clips, D * len(pooling))`` float32.
    """
    return np.stack([miml_embedding(model, clip, stft_cfg, nmf_cfg, pooling=pooling, device=device)
                     for clip in cut_clips(wave, stft_cfg.sample_rate, seconds)])


# --- the probe ---------------------------------------------------------------------------


def _build_module(kind: str, n_features: int, n_classes: int) -> nn.Module:
    if kind == "linear":
        return nn.Linear(n_features, n_classes)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(n_features, MLP_HIDDEN), nn.ReLU(), nn.Linear(MLP_HIDDEN, MLP_HIDDEN),
                             nn.ReLU(), nn.Linear(MLP_HIDDEN, n_classes))
    raise InputError(f"probe kind must be one of {PROBE_KINDS}, got {kind!r}")


@dataclasses.dataclass
class Probe:
    """A trained probe.

    Attributes:
        kind: ``linear`` or ``mlp``.
        feature: the name of the feature it reads (e.g. ``logmel``, ``miml``).
        label_names: the L classes, in the column order of :meth:`predict_proba`.
        mean, scale: ``(D,)`` the standardisation fitted on the training clips.
        module: the classifier (eval mode), standardised features to logits.
        history: one row per epoch: ``epoch, loss, train_acc, val_acc, val_loss, selected``.
        seed: the training seed.
        feature_params: how the features were computed (sample rate, clip length, mel
            settings...), so that a user of a saved probe can compute the same.
    """

    kind: str
    feature: str
    label_names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    module: nn.Module
    history: list[dict]
    seed: int = 0
    feature_params: dict = dataclasses.field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return len(self.mean)

    @property
    def best_epoch(self) -> int:
        """The (1-based) epoch whose weights were kept."""
        return next(row["epoch"] for row in self.history if row["selected"])

    def _standardize(self, X: np.ndarray) -> torch.Tensor:
        X = _features(X, "X")
        if X.shape[1] != self.n_features:
            raise InputError(f"the probe reads {self.n_features} {self.feature} features per clip, "
                             f"got {X.shape[1]}")
        return torch.from_numpy(((X - self.mean) / self.scale).astype(np.float32))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities ``(nb_clips, L)`` of features ``X`` ``(nb_clips, D)``."""
        self.module.eval()
        with torch.no_grad():
            return torch.softmax(self.module(self._standardize(X)), dim=1).numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The most likely label of every clip: ``(nb_clips,)`` strings."""
        return np.asarray(self.label_names)[self.predict_proba(X).argmax(axis=1)]

    def save(self, path: str | Path) -> None:
        """Write the probe atomically as a torch file holding a plain dict (tensors and
        Python values only, readable with ``torch.load(weights_only=True)``)."""
        from avsep.files import save_torch

        save_torch(path, {
            "probe_format": PROBE_FORMAT,
            "kind": self.kind,
            "feature": self.feature,
            "label_names": list(self.label_names),
            "n_features": self.n_features,
            "mean": torch.from_numpy(np.asarray(self.mean, np.float64)),
            "scale": torch.from_numpy(np.asarray(self.scale, np.float64)),
            "state_dict": self.module.state_dict(),
            "history": [dict(row) for row in self.history],
            "seed": int(self.seed),
            "feature_params": {k: v.item() if isinstance(v, np.generic) else v
                               for k, v in sorted(self.feature_params.items())},
        })


def load_probe(path: str | Path) -> Probe:
    """Read a probe written by :meth:`Probe.save`."""
    try:
        meta = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise InputError(f"{path}: not a readable probe file ({str(err).splitlines()[0]})") from None
    if not isinstance(meta, dict) or meta.get("probe_format") != PROBE_FORMAT:
        found = meta.get("probe_format") if isinstance(meta, dict) else type(meta).__name__
        raise InputError(f"{path}: not a probe of format {PROBE_FORMAT} (found {found!r})")
    module = _build_module(meta["kind"], meta["n_features"], len(meta["label_names"]))
    module.load_state_dict(meta["state_dict"])
    return Probe(kind=meta["kind"], feature=meta["feature"], label_names=list(meta["label_names"]),
                 mean=meta["mean"].numpy(), scale=meta["scale"].numpy(), module=module.eval(),
                 history=list(meta["history"]), seed=meta["seed"], feature_params=dict(meta["feature_params"]))


def _features(X: np.ndarray, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise InputError(f"{name} must be (nb_clips, nb_features), got shape {X.shape}")
    if not np.isfinite(X).all():
        rows = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise InputError(f"{name} holds NaN or Inf features in {len(rows)} clip(s), first at row {rows[0]}")
    return X


def _labels(y: Sequence, n: int, name: str) -> np.ndarray:
    y = np.asarray(y).astype(str)
    if y.ndim != 1 or len(y) != n:
        raise InputError(f"{name} has {len(y)} labels for {n} clips; give one label per clip")
    return y


def _evaluate(module: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``module`` on standardised features."""
    module.eval()
    with torch.no_grad():
        logits = module(X)
        return (float((logits.argmax(1) == y).float().mean()),
                float(nn.functional.cross_entropy(logits, y)))


def train_probe(
    X_train: np.ndarray,
    y_train: Sequence,
    X_val: np.ndarray,
    y_val: Sequence,
    *,
    kind: str = "linear",
    feature: str = "logmel",
    seed: int = 0,
    max_epochs: int = 300,
    patience: int = 30,
    lr: float = 1e-3,
    batch_size: int = 64,
    feature_params: dict | None = None,
    log: Callable[[str], None] | None = None,
) -> Probe:
    """Train a probe on frozen clip features, keeping the best epoch on validation.

    The features are standardised with the training clips' mean and deviation
    (``sklearn.preprocessing.StandardScaler``; a constant feature keeps scale 1). The
    classifier is trained with cross-entropy and Adam on shuffled mini-batches, both seeded
    (the global torch random state is left as it was). After every epoch the validation
    clips are scored; the epoch with the best accuracy, ties broken by the lower loss, is
    kept, and training stops after ``patience`` epochs without a better one, or at
    ``max_epochs``.

    Args:
        X_train, X_val: ``(nb_clips, D)`` features.
        y_train, y_val: ``(nb_clips,)`` labels (compared as strings). The classes are the
            sorted training labels; every validation label must be one of them.
        kind: ``linear`` or ``mlp`` (Linear-ReLU-Linear-ReLU-Linear, hidden width
            :data:`MLP_HIDDEN`).
        feature: the feature's name, stored with the probe.
        seed: initial weights and batch order.
        max_epochs, patience: epochs at most; epochs without a better validation score
            before stopping.
        lr, batch_size: Adam's learning rate; clips per step.
        feature_params: stored with the probe (see :class:`Probe`).
        log: called with a line every 10 epochs and at the end.

    Returns:
        the :class:`Probe` holding the kept epoch's weights; its history marks that row
        ``selected``.
    """
    from sklearn.preprocessing import StandardScaler

    X_train, X_val = _features(X_train, "X_train"), _features(X_val, "X_val")
    y_train, y_val = _labels(y_train, len(X_train), "y_train"), _labels(y_val, len(X_val), "y_val")
    if kind not in PROBE_KINDS:
        raise InputError(f"probe kind must be one of {PROBE_KINDS}, got {kind!r}")
    if X_val.shape[1] != X_train.shape[1]:
        raise InputError(f"X_val has {X_val.shape[1]} features per clip, X_train {X_train.shape[1]}")
    label_names = sorted(str(v) for v in set(y_train))
    if len(label_names) < 2:
        raise InputError(f"the training clips hold {len(label_names)} class(es) {label_names}; a probe needs "
                         "at least 2")
    if len(X_val) == 0:
        raise InputError("no validation clips: the probe keeps its best epoch on validation")
    unseen = sorted(str(v) for v in set(y_val) - set(label_names))
    if unseen:
        raise InputError(f"validation labels {unseen} have no training clips (training classes: {label_names})")
    if max_epochs < 1 or patience < 1 or batch_size < 1:
        raise InputError(f"max_epochs, patience and batch_size must be >= 1, got {max_epochs}, {patience}, "
                         f"{batch_size}")
    index = {name: i for i, name in enumerate(label_names)}
    scaler = StandardScaler().fit(X_train)
    Xt = torch.from_numpy(scaler.transform(X_train).astype(np.float32))
    Xv = torch.from_numpy(scaler.transform(X_val).astype(np.float32))
    yt = torch.tensor([index[v] for v in y_train], dtype=torch.int64)
    yv = torch.tensor([index[v] for v in y_val], dtype=torch.int64)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _build_module(kind, Xt.shape[1], len(label_names))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history: list[dict] = []
    best, best_state = None, None
    for epoch in range(1, max_epochs + 1):
        module.train()
        total = 0.0
        for idx in torch.randperm(len(Xt), generator=gen).split(batch_size):
            loss = loss_fn(module(Xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_acc, _ = _evaluate(module, Xt, yt)
        val_acc, val_loss = _evaluate(module, Xv, yv)
        row = {"epoch": epoch, "loss": total / len(Xt), "train_acc": train_acc, "val_acc": val_acc,
               "val_loss": val_loss, "selected": False}
        history.append(row)
        if best is None or (val_acc, -val_loss) > (best["val_acc"], -best["val_loss"]):
            best, best_state = row, copy.deepcopy(module.state_dict())
        if log and epoch % 10 == 0:
            log(f"{kind} probe epoch {epoch}: loss {row['loss']:.4f} train_acc {train_acc:.3f} "
                f"val_acc {val_acc:.3f} val_loss {val_loss:.4f}")
        if epoch - best["epoch"] >= patience:
            break
    best["selected"] = True
    module.load_state_dict(best_state)
    if log:
        log(f"{kind} probe: kept epoch {best['epoch']} of {len(history)} (val_acc {best['val_acc']:.3f}, "
            f"val_loss {best['val_loss']:.4f})")
    return Probe(kind=kind, feature=feature, label_names=label_names, mean=scaler.mean_.copy(),
                 scale=scaler.scale_.copy(), module=module.eval(), history=history, seed=seed,
                 feature_params=dict(feature_params or {}))


# --- scores ------------------------------------------------------------------------------


def _label_indices(probe: Probe, y: Sequence, n: int) -> np.ndarray:
    y = _labels(y, n, "y")
    index = {name: i for i, name in enumerate(probe.label_names)}
    unknown = sorted(str(v) for v in set(y) - set(index))
    if unknown:
        raise InputError(f"labels {unknown} are not among the probe's classes {probe.label_names}")
    return np.array([index[v] for v in y], dtype=np.int64)


def probe_accuracy(probe: Probe, X: np.ndarray, y: Sequence) -> float:
    """Fraction of clips ``X`` ``(nb_clips, D)`` whose predicted label is ``y``."""
    true = _label_indices(probe, y, len(X))
    if not len(true):
        return float("nan")
    return float((probe.predict_proba(X).argmax(axis=1) == true).mean())


def probe_confusion(probe: Probe, X: np.ndarray, y: Sequence) -> np.ndarray:
    """``(L, L)`` counts of clips, rows the true label and columns the predicted one, both in
    the order of ``probe.label_names``."""
    from avsep.vision import confusion_matrix

    true = _label_indices(probe, y, len(X))
    pred = probe.predict_proba(X).argmax(axis=1) if len(true) else np.zeros(0, np.int64)
    return confusion_matrix(true, pred, len(probe.label_names))


def predict_track(probe: Probe, X: np.ndarray) -> tuple[str, np.ndarray]:
    """Name the instrument of a track from the features of its clips.

    Args:
        X: ``(nb_clips, D)``, e.g. :func:`logmel_clips` of the track.

    Returns:
        the most likely label and the ``(L,)`` mean of the clips' probabilities.
    """
    if len(X) == 0:
        raise InputError("the track has no clips")
    probs = probe.predict_proba(X).mean(axis=0)
    return probe.label_names[int(probs.argmax())], probs


#: The features a probe can read.
FEATURES = ("logmel", "miml")


def track_features(feature: str, wave: np.ndarray, sample_rate: int, *, seconds: float = CLIP_SECONDS,
                   miml: tuple | None = None, device: str = "cpu") -> np.ndarray:
    """The clip features ``(nb_clips, D)`` of one track: :func:`logmel_clips` for
    ``logmel``; :func:`miml_clips` for ``miml``, with ``miml = (model, stft_cfg, nmf_cfg)``."""
    if feature == "logmel":
        return logmel_clips(wave, sample_rate, seconds=seconds)
    if feature == "miml":
        if miml is None:
            raise InputError("the miml feature needs the MIML network and its STFT and NMF settings")
        model, stft_cfg, nmf_cfg = miml
        if sample_rate != stft_cfg.sample_rate:
            raise InputError(f"the miml feature reads audio at {stft_cfg.sample_rate} Hz, got {sample_rate} Hz")
        return miml_clips(model, wave, stft_cfg, nmf_cfg, seconds=seconds, device=device)
    raise InputError(f"probe feature must be one of {FEATURES}, got {feature!r}")


def name_tracks(probe: Probe, tracks: dict, sample_rate: int, *, miml: tuple | None = None,
                device: str = "cpu") -> dict:
    """Name each track of ``tracks`` (name -> mono audio) with ``probe``: name -> label
    (:func:`predict_track` over the clips of :func:`track_features`, at the clip length the
    probe was trained with)."""
    seconds = float(probe.feature_params.get("clip_seconds", CLIP_SECONDS))
    rate = probe.feature_params.get("sample_rate")
    if rate is not None and int(rate) != int(sample_rate):
        raise InputError(f"the {probe.feature} {probe.kind} probe was trained on audio at {rate} Hz, "
                         f"got audio at {sample_rate} Hz")
    return {name: predict_track(probe, track_features(probe.feature, wave, sample_rate, seconds=seconds,
                                                      miml=miml, device=device))[0]
            for name, wave in tracks.items()}
