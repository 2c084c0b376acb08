"""The audio probe: it names the instrument of synthetic timbres it never heard, where a probe
trained on shuffled labels stays at chance; features of silence are finite; the best
validation epoch is the one kept; saved probes predict the same; bad input is refused.
The MIML embedding is the network's per-basis layer, pooled over a clip's bases."""

import numpy as np
import pytest
import torch

from avsep.bases import NMFConfig, compute_bases
from avsep.errors import InputError
from avsep.miml.bags import normalize_bases
from avsep.miml.model import MIMLNet
from avsep.probe.features import (basis_embeddings, clip_levels_db, clip_starts, cut_clips, logmel_clips,
                                  logmel_stats, miml_clips, miml_embedding, pool_basis_embeddings)
from avsep.probe.model import load_probe
from avsep.probe.predict import predict_track
from avsep.probe.scores import probe_accuracy, probe_confusion
from avsep.probe.train import train_probe
from avsep.transforms import STFTConfig

SR = 11025
CLASSES = ["clarinet", "flute", "noise", "strings"]  # sorted: the probe's class order
CLIP = 1.0  # seconds; recordings of 2 s give two clips each


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The probes' matrices are tiny: torch's thread pool only slows each step down, the
    more so on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def recording(label: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A synthetic solo: a harmonic tone with the spectral envelope and register of its
    class (dark with odd harmonics, nearly pure, bright with a formant; each with vibrato),
    or band-passed noise; random pitch, band, level and tremolo per recording."""
    n = int(seconds * SR)
    t = np.arange(n) / SR
    if label == "noise":
        spec = np.fft.rfft(rng.standard_normal(n))
        freqs = np.fft.rfftfreq(n, 1 / SR)
        low = rng.uniform(1200, 1800)
        spec[(freqs < low) | (freqs > low + 1500)] = 0
        x = np.fft.irfft(spec, n)
    else:
        f0 = rng.uniform(*{"clarinet": (140, 260), "flute": (450, 800), "strings": (200, 400)}[label])
        k = np.arange(1, int(SR / 2 / f0))
        f = k * f0
        amp = {"clarinet": np.where(k % 2 == 1, 1.0, 0.02) / k * np.exp(-f / 1500),  # dark, odd harmonics
               "flute": np.exp(-1.2 * (k - 1)),  # nearly pure
               "strings": (1 + 4 * np.exp(-(((f - 2500) / 700) ** 2))) / k**0.5}[label]  # bright, 2.5 kHz formant
        phase = 2 * np.pi * f0 * np.cumsum(1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 6) * t)) / SR
        x = (amp[:, None] * np.sin(k[:, None] * phase + rng.uniform(0, 2 * np.pi, (len(k), 1)))).sum(axis=0)
        if label == "flute":
            x = x + 0.05 * rng.standard_normal(n)  # breath
    x = x * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t) ** 2)
    return (rng.uniform(0.05, 0.5) * x / np.abs(x).max()).astype(np.float32)


def split(n_recordings: int, seed: int) -> tuple[list, np.ndarray, np.ndarray]:
    """``n_recordings`` 2-s recordings per class: the recordings, and the log-mel features
    and labels of their 1-s clips. Each split draws its own recordings."""
    rng = np.random.default_rng(seed)
    recs = [(label, recording(label, 2.0, rng)) for label in CLASSES for _ in range(n_recordings)]
    X = np.concatenate([logmel_clips(wave, SR, seconds=CLIP) for _, wave in recs])
    y = np.repeat([label for label, _ in recs], 2)
    return recs, X, y


@pytest.fixture(scope="module")
def clips():
    return {"train": split(10, seed=1), "val": split(4, seed=2), "test": split(6, seed=3)}


@pytest.fixture(scope="module")
def probes(clips):
    (_, Xt, yt), (_, Xv, yv) = clips["train"][:3], clips["val"][:3]
    return {kind: train_probe(Xt, yt, Xv, yv, kind=kind, seed=0, feature_params={"sample_rate": SR})
            for kind in ("linear", "mlp")}


# --- clips and features ------------------------------------------------------------------


def test_clips_drop_the_tail_but_keep_one():
    assert clip_starts(int(2.5 * SR), SR, 1.0).tolist() == [0, SR]
    assert cut_clips(np.arange(int(2.5 * SR), dtype=np.float32), SR, 1.0).shape == (2, SR)
    short = cut_clips(np.ones(4000, np.float32), SR, 1.0)
    assert short.shape == (1, 4000)  # shorter than a clip: one clip of its own length
    with pytest.raises(InputError, match="no samples"):
        clip_starts(0, SR, 1.0)
    # a tone at -20 dBFS RMS, then a second of silence: the silent clip can be left out
    tone = np.concatenate([0.1 * np.sqrt(2) * np.sin(2 * np.pi * 440 * np.arange(SR) / SR), np.zeros(SR)])
    np.testing.assert_allclose(clip_levels_db(tone, SR, 1.0), [-20.0, -200.0], atol=0.01)


def test_silence_and_tiny_clips_give_finite_features():
    silent = logmel_stats(np.zeros(SR, np.float32), SR)
    assert silent.shape == (128,) and np.isfinite(silent).all()
    np.testing.assert_allclose(silent[:64], -100.0)  # the -100 dB floor, no deviation
    np.testing.assert_allclose(silent[64:], 0.0)
    tiny = logmel_stats(np.full(50, 1e-3, np.float32), SR, n_mels=32)  # shorter than one window
    assert tiny.shape == (64,) and np.isfinite(tiny).all()
    assert np.isfinite(logmel_clips(np.zeros(3 * SR, np.float32), SR, seconds=CLIP)).all()


def test_features_ignore_loudness_but_see_timbre():
    rng = np.random.default_rng(0)
    flute, strings = recording("flute", 1.0, rng), recording("strings", 1.0, rng)
    np.testing.assert_allclose(logmel_stats(0.05 * flute, SR), logmel_stats(flute, SR), atol=1e-3)
    assert np.abs(logmel_stats(flute, SR) - logmel_stats(strings, SR))[:64].max() > 10  # dB


# --- training and prediction -------------------------------------------------------------


def test_probes_name_unheard_timbres_where_shuffled_labels_stay_at_chance(clips, probes):
    (_, Xt, yt), (_, Xv, yv), (recs, Xs, ys) = clips["train"], clips["val"], clips["test"]
    chance = 1 / len(CLASSES)
    for kind, probe in probes.items():
        assert probe.label_names == CLASSES
        accuracy = probe_accuracy(probe, Xs, ys)
        assert accuracy >= 0.9, kind
        confusion = probe_confusion(probe, Xs, ys)
        assert confusion.sum() == len(ys) and np.trace(confusion) == round(accuracy * len(ys))
        tracks = [predict_track(probe, logmel_clips(wave, SR, seconds=CLIP))[0] == label for label, wave in recs]
        assert np.mean(tracks) >= 0.9, kind
        # The same training with labels that say nothing of the audio (train and validation
        # shuffled together), over a few shuffles: one shuffle alone can land far from chance.
        shuffled = []
        for s in range(4):
            y = np.random.default_rng(s).permutation(np.concatenate([yt, yv]))
            shuffled.append(probe_accuracy(train_probe(Xt, y[: len(yt)], Xv, y[len(yt):], kind=kind, seed=s),
                                           Xs, ys))
        assert np.mean(shuffled) <= chance + 0.15, (kind, shuffled)
        assert accuracy - np.mean(shuffled) >= 0.5, (kind, accuracy, shuffled)


def _overlapping_classes(n_per_class: int, seed: int, dim: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian classes whose means differ a little: an MLP soon fits the training
    noise, and its validation loss then rises."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(99).standard_normal((3, dim)) * 0.25
    y = np.repeat(["a", "b", "c"], n_per_class)
    return means[np.repeat(np.arange(3), n_per_class)] + rng.standard_normal((len(y), dim)), y


def test_early_stopping_keeps_the_best_validation_epoch():
    (Xt, yt), (Xv, yv) = _overlapping_classes(20, seed=1), _overlapping_classes(30, seed=2)
    probe = train_probe(Xt, yt, Xv, yv, kind="mlp", seed=0, max_epochs=300, patience=20)
    history = probe.history
    assert sum(row["selected"] for row in history) == 1
    best = max(history, key=lambda row: (row["val_acc"], -row["val_loss"]))
    assert best["selected"] and probe.best_epoch == best["epoch"]
    # it stopped `patience` epochs after the best one, long before max_epochs
    assert len(history) == probe.best_epoch + 20 < 300
    assert history[-1]["train_acc"] == 1.0 and history[-1]["val_loss"] > best["val_loss"]  # overfitted
    # the weights kept are that epoch's: the probe scores the validation clips as it did then
    assert probe_accuracy(probe, Xv, yv) == pytest.approx(best["val_acc"])
    p = probe.predict_proba(Xv)[np.arange(len(yv)), [probe.label_names.index(v) for v in yv]]
    assert float(-np.log(p).mean()) == pytest.approx(best["val_loss"], rel=1e-4)
    assert probe_accuracy(probe, Xv, yv) > 1 / 3 + 0.1  # and it had learned something


def test_saved_probe_predicts_the_same(tmp_path, clips, probes):
    Xs = clips["test"][1]
    for kind, probe in probes.items():
        probe.save(tmp_path / f"{kind}.pt")
        back = load_probe(tmp_path / f"{kind}.pt")
        np.testing.assert_array_equal(back.predict_proba(Xs), probe.predict_proba(Xs))
        assert (back.kind, back.feature, back.label_names, back.best_epoch, back.feature_params) == (
            kind, "logmel", CLASSES, probe.best_epoch, {"sample_rate": SR})
        assert back.history == probe.history
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a probe"):
        load_probe(tmp_path / "other.pt")


def test_same_seed_same_probe(clips):
    (_, Xt, yt), (_, Xv, yv), Xs = clips["train"], clips["val"], clips["test"][1]
    rng_state = torch.get_rng_state()
    runs = [train_probe(Xt, yt, Xv, yv, kind="mlp", seed=seed, max_epochs=15) for seed in (7, 7, 8)]
    np.testing.assert_array_equal(runs[0].predict_proba(Xs), runs[1].predict_proba(Xs))
    assert runs[0].history == runs[1].history
    assert not np.array_equal(runs[0].predict_proba(Xs), runs[2].predict_proba(Xs))
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global torch RNG is left alone


def test_bad_input_is_refused_with_a_clear_message(clips, probes):
    (_, Xt, yt), (_, Xv, yv) = clips["train"], clips["val"]
    nan = Xt.copy()
    nan[5, 3] = np.nan
    cases = [
        (dict(y_train=yt[:-1]), "y_train has 79 labels for 80 clips"),
        (dict(y_train=np.full(len(yt), "flute")), r"1 class\(es\) \['flute'\]; a probe needs at least 2"),
        (dict(y_val=np.where(yv == "noise", "tuba", yv)), r"validation labels \['tuba'\] have no training clips"),
        (dict(X_train=nan), "X_train holds NaN or Inf features in 1 clip.*row 5"),
        (dict(X_val=Xv[:, :10]), "X_val has 10 features per clip, X_train 128"),
        (dict(kind="svm"), "probe kind must be one of"),
        (dict(X_val=Xv[:0], y_val=yv[:0]), "no validation clips"),
    ]
    for change, message in cases:
        args = {"X_train": Xt, "y_train": yt, "X_val": Xv, "y_val": yv, **change}
        with pytest.raises(InputError, match=message):
            train_probe(args.pop("X_train"), args.pop("y_train"), args.pop("X_val"), args.pop("y_val"),
                        max_epochs=2, **args)
    with pytest.raises(InputError, match="reads 128 logmel features per clip, got 64"):
        probes["linear"].predict(Xv[:, :64])
    with pytest.raises(InputError, match=r"labels \['tuba'\] are not among"):
        probe_accuracy(probes["linear"], Xv[:1], ["tuba"])
    with pytest.raises(InputError, match="NaN or Inf samples"):
        logmel_stats(np.full(100, np.nan, np.float32), SR)


# --- the MIML embedding ------------------------------------------------------------------


STFT = STFTConfig(sample_rate=SR, n_fft=256, hop_length=128)
NMF = NMFConfig(n_components=6, n_iter=30, chunk_seconds=1.0)


def test_miml_embedding_pools_the_per_basis_layer_over_every_basis():
    net = MIMLNet(STFT.n_bins, 3, hidden=(16, 8), sub_concepts=4).eval()
    wave = recording("strings", 2.0, np.random.default_rng(0))  # two NMF chunks of 6 bases
    bags = normalize_bases(compute_bases(wave, STFT, NMF).W)  # (2, 6, 129)
    emb = basis_embeddings(net, bags)
    assert emb.shape == (2, 6, 8)
    # it is the layer the label pooling reads: from it, the network's own relation map
    with torch.no_grad():
        sub = net.sub_concepts(torch.from_numpy(emb)).reshape(2, 6, 3, 4)
        _, relation = net(torch.from_numpy(bags))
    torch.testing.assert_close(torch.softmax(sub.amax(dim=3), dim=2), relation)

    feature = miml_embedding(net, wave, STFT, NMF)
    assert feature.shape == (16,)
    flat = emb.reshape(12, 8)  # pooled over the 12 bases of both chunks
    np.testing.assert_allclose(feature, np.concatenate([flat.mean(axis=0), flat.max(axis=0)]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(miml_embedding(net, wave, STFT, NMF, pooling=("mean",)), flat.mean(axis=0),
                               rtol=1e-5, atol=1e-6)
    # the order of the bases does not matter
    np.testing.assert_allclose(pool_basis_embeddings(flat[::-1].copy()), pool_basis_embeddings(flat), rtol=1e-6)
    per_clip = miml_clips(net, wave, STFT, NMF, seconds=1.0)  # each 1-s clip factored on its own
    assert per_clip.shape == (2, 16)
    np.testing.assert_array_equal(per_clip[1], miml_embedding(net, wave[SR:], STFT, NMF))
    # silence: no bases, zeros; a clip shorter than a chunk is one chunk of its own length
    np.testing.assert_array_equal(miml_embedding(net, np.zeros(SR, np.float32), STFT, NMF), np.zeros(16))
    assert np.abs(miml_embedding(net, wave[: SR // 2], STFT, NMF)).sum() > 0
    with pytest.raises(InputError, match=r"bags must have shape \(nb_bags, M, 129\)"):
        basis_embeddings(net, bags[:, :, :64])
    with pytest.raises(InputError, match="pooling"):
        pool_basis_embeddings(flat, ("median",))


def test_logmel_stats_equal_librosas_melspectrogram():
    import librosa

    x = np.random.default_rng(0).standard_normal(22050 * 2).astype(np.float32) * 0.1
    unit = x / np.sqrt(np.mean(x.astype(np.float64) ** 2))
    mel = librosa.feature.melspectrogram(y=unit, sr=22050, n_fft=1024, hop_length=512, n_mels=64, fmin=50.0,
                                         power=2.0, pad_mode="constant")
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(logmel_stats(x, 22050), np.concatenate([db.mean(axis=1), db.std(axis=1)]), atol=1e-4)
