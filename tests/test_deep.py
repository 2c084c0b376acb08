"""The deep separator (method ``deep``): its networks, the log-frequency warp, learning,
checkpoints and resume, and that what it sees decides what it separates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from avsep.deep.data import DeepClips, MixSampler, read_clips, write_clips
from avsep.deep.model import DeepConfig, build_separator, load_separator, save_separator
from avsep.deep.separate import separate_deep
from avsep.deep.spectral import DeepAudio, LogWarp, mask_to_grid, unwarp_matrix, warp_matrix
from avsep.deep.train import batch_loss, evaluate, train_deep
from avsep.deep.visual import record_vector, region_images
from avsep.errors import InputError
from avsep.transforms import STFTConfig

AUDIO = DeepAudio(sample_rate=8000, n_fft=254, hop_length=64, log_bins=64, clip_frames=32)
NAMES = ["low", "high"]
SMALL = dict(network="tcn", channels=48, depth=4, cond_dim=16, epochs=6, steps_per_epoch=12, batch_size=8,
             lr=3e-3, val_pairs=12, eq_db=0.0)


def _tone(f0: float, seconds: float, sr: int, rng, harmonics: int) -> np.ndarray:
    """A note sequence of one "instrument": harmonic tones around ``f0``, each note 0.25 s."""
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros_like(t)
    for k in range(int(seconds / 0.25)):
        f = f0 * 2 ** (rng.integers(0, 7) / 12)
        seg = (t >= k * 0.25) & (t < (k + 1) * 0.25)
        out[seg] = sum(np.sin(2 * np.pi * f * h * t[seg]) / h for h in range(1, harmonics + 1))
    return (0.2 * out).astype(np.float32)


def _clips(seed: int, n_per: int = 3, seconds: float = 4.0) -> DeepClips:
    """Two instruments that a mask can tell apart: low tones with many harmonics, high tones
    with few; each clip sees its instrument through a vision vector."""
    rng = np.random.default_rng(seed)
    audio, labels, visual = [], [], []
    for k in range(n_per):
        for name, f0, h in (("low", 110.0, 6), ("high", 880.0, 2)):
            audio.append(_tone(f0, seconds, AUDIO.sample_rate, rng, h))
            labels.append(name)
            visual.append(np.eye(2, dtype=np.float32)[NAMES.index(name)] * 0.9 + 0.05)
    return DeepClips([f"{l}-{seed}-{i}" for i, l in enumerate(labels)], labels, NAMES, audio, visual,
                     [np.zeros(1)] * len(audio), "vision", AUDIO.sample_rate)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    cfg = DeepConfig(**SMALL)
    model, metrics = train_deep(_clips(0), _clips(1), cfg, AUDIO, progress=False)
    return cfg, model, metrics


@pytest.mark.parametrize("network, depth, channels", [("tcn", 3, 16), ("unet", 3, 8)])
@pytest.mark.parametrize("condition", ["film", "bottleneck", "synthesizer"])
@pytest.mark.parametrize("visual", ["vision", "cnn"])
def test_network_shapes(network, depth, channels, condition, visual):
    cfg = DeepConfig(network=network, depth=depth, channels=channels, condition=condition, visual=visual,
                     cond_dim=8, image_size=32)
    model = build_separator(cfg, AUDIO, 3)
    T = 37  # not a multiple of the U-Net's stride: padded inside, cropped back
    v = torch.rand(2, 3) if visual == "vision" else torch.rand(2, 3, 32, 32)
    out = model(torch.randn(2, AUDIO.log_bins, T), v)
    assert out.shape == (2, AUDIO.log_bins, T)
    assert torch.isfinite(out).all()
    # Both sources of a mixture at once (the synthesizer runs the network once) = one by one.
    model.eval()
    v2 = torch.cat([v, v.flip(0)])[[0, 2, 1, 3]]
    x = torch.randn(2, AUDIO.log_bins, T)
    with torch.no_grad():
        torch.testing.assert_close(model.source_logits(x, v2), model(x.repeat_interleave(2, dim=0), v2),
                                   atol=1e-4, rtol=1e-4)


def test_frequency_front_end_shapes():
    model = build_separator(DeepConfig(depth=2, channels=16, freq_channels=4, cond_dim=8), AUDIO, 3)
    assert model(torch.randn(2, AUDIO.log_bins, 20), torch.rand(2, 3)).shape == (2, AUDIO.log_bins, 20)


def test_the_synthesizer_weights_its_kernels_as_it_would_weight_its_maps():
    """The temporal network's synthesizer weights the output convolution's kernels by the
    vector (one product per source) rather than computing all its maps and weighting those.
    Both are the same linear map: the logits and every parameter's gradient agree to rounding."""
    torch.manual_seed(0)
    model = build_separator(DeepConfig(depth=3, channels=16, freq_channels=4, cond_dim=8), AUDIO, 3)
    x, v = torch.randn(3, AUDIO.log_bins, 25), torch.rand(6, 3)
    upstream = torch.randn(6, AUDIO.log_bins, 25)

    def grads(logits_of):
        model.zero_grad()
        logits = logits_of()
        (logits * upstream).sum().backward()
        return logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    fused, fused_grads = grads(lambda: model.source_logits(x, v))
    maps, maps_grads = grads(lambda: torch.einsum("bkft,bsk->bsft", model.masknet.output_maps(x, None),
                                                  model.encoder(v).view(3, 2, -1)).reshape(6, AUDIO.log_bins, 25))
    torch.testing.assert_close(fused, maps, atol=1e-5, rtol=1e-5)
    for name, g in maps_grads.items():
        torch.testing.assert_close(fused_grads[name], g, atol=1e-4, rtol=1e-4, msg=name)
    # One source per mixture through forward() takes the same path.
    torch.testing.assert_close(model(x, v[::2]), fused[::2], atol=1e-5, rtol=1e-5)


def test_published_unet_size():
    """config/deep.yaml's U-Net: 7 levels of 64 base channels on 256 log bins, as Sound of Pixels."""
    model = build_separator(DeepConfig(network="unet", depth=7, channels=64), DeepAudio(), 8)
    params = sum(p.numel() for p in model.masknet.parameters())
    assert 30e6 < params < 60e6
    assert model(torch.randn(1, 256, 256), torch.rand(1, 8)).shape == (1, 256, 256)


def test_log_warp_round_trip():
    """Round trips of the warp at the default 512 linear / 256 log bins.

    Linear -> log -> linear keeps a smooth magnitude spectrum to 0.6 % (relative L2; the
    bound here is 1 %). Log -> linear -> log keeps a smooth mask to 0.006 (bound 0.01) where
    the log grid is sparser than the linear one (above linear bin 41, some 890 Hz); below
    it the log grid oversamples the linear one (28 log bins between linear bins 1 and 2),
    so detail of a log mask there has no linear counterpart and is not asked for.
    """
    from avsep.deep.spectral import log_positions

    a = DeepAudio()
    f = np.arange(a.n_lin) / a.n_lin
    spectrum = 1.0 + 0.5 * np.sin(2 * np.pi * 3 * f) + np.exp(-f * 4)
    back = unwarp_matrix(a.n_lin, a.log_bins) @ (warp_matrix(a.n_lin, a.log_bins) @ spectrum)
    assert np.linalg.norm(back - spectrum) / np.linalg.norm(spectrum) < 0.01
    q = np.linspace(0, 1, a.log_bins)
    mask = 0.5 + 0.4 * np.sin(2 * np.pi * 2 * q)
    again = warp_matrix(a.n_lin, a.log_bins) @ (unwarp_matrix(a.n_lin, a.log_bins) @ mask)
    sparse = np.gradient(log_positions(a.n_lin, a.log_bins)) >= 1
    assert sparse.sum() > 80
    assert np.abs(again - mask)[sparse].max() < 0.01
    # Rows are weights: a constant stays constant both ways.
    warp = LogWarp(a.n_lin, a.log_bins)
    ones = torch.ones(a.n_lin, 5)
    assert torch.allclose(warp.unwarp(warp.warp(ones)), ones, atol=1e-5)


def test_mask_to_grid_keeps_a_mask_and_fills_the_band_above():
    a = DeepAudio()
    native = STFTConfig(22050, 2048, 512)
    T = 40
    mask = np.tile(np.linspace(0, 1, a.n_lin)[:, None], (1, T)).astype(np.float32)
    grid = mask_to_grid(mask, a, native, T)
    assert grid.shape == (native.n_bins, T)
    hz = np.arange(native.n_bins) * native.sample_rate / native.n_fft
    below = hz < a.sample_rate / 2 - 20
    np.testing.assert_allclose(grid[below, 5], hz[below] / (a.sample_rate / 2) * (a.n_lin - 1) / (a.n_lin - 1),
                               atol=0.01)
    np.testing.assert_allclose(grid[~below, 5], 1.0, atol=0.01)  # above the model's Nyquist: its top bin


def test_mix_and_separate_batches():
    clips = _clips(0)
    sampler = MixSampler(clips, AUDIO, target="ratio", gain_min=0.5, gain_max=1.5)
    gen = torch.Generator().manual_seed(0)
    pairs = sampler.draw(gen, 10)
    assert all(clips.labels[i] != clips.labels[j] for i, j, *_ in pairs)
    assert all(0.5 <= g <= 1.5 for *_, gi, gj in pairs for g in (gi, gj))
    batch = sampler.batch(pairs)
    assert batch.logmag.shape == batch.weight.shape == (10, AUDIO.log_bins, AUDIO.clip_frames)
    assert batch.target.shape == (20, AUDIO.log_bins, AUDIO.clip_frames) and len(batch.visual) == 20
    assert batch.target.min() >= 0 and batch.target.max() <= 1
    # The mixture is the sum of the scaled sources, each half its gain (sum / number of sources).
    torch.testing.assert_close(batch.sources.sum(dim=1), batch.mixture)
    i, j, si, sj, gi, gj = pairs[0]
    ref = gi * sampler.specs[i][:, si : si + AUDIO.clip_frames] / 2
    torch.testing.assert_close(batch.sources[0, 0], ref)
    assert sampler.fixed_pairs(5, 3) == sampler.fixed_pairs(5, 3)


def test_phase_sensitive_targets_and_their_loss():
    """``psa``: the two sources' phase-sensitive targets sum to the mixture's magnitude, and the
    loss is the negative spectral SDR of the masked mixture, per source, in dB."""
    sampler = MixSampler(_clips(0), AUDIO, target="psa")
    pairs = sampler.draw(torch.Generator().manual_seed(2), 6)
    batch = sampler.batch(pairs)
    B, n_lin, T = batch.mixture.shape
    assert batch.target.shape == (2 * B, n_lin, T)
    torch.testing.assert_close(batch.target.view(B, 2, n_lin, T).sum(dim=1), batch.mixture.abs(), atol=1e-4,
                               rtol=1e-4)

    class Constant(torch.nn.Module):  # a mask of sigmoid(logit) everywhere, whatever is seen
        audio = AUDIO

        def __init__(self, logit):
            super().__init__()
            self.logit = logit

        def source_logits(self, logmag, visual):
            return torch.full((len(visual), AUDIO.log_bins, logmag.shape[-1]), self.logit)

    for logit in (0.0, 2.0):
        mask = torch.sigmoid(torch.tensor(logit))
        est, S = mask * batch.mixture.abs(), batch.sources
        err = (est[:, None] - batch.target.view(B, 2, n_lin, T)).pow(2).sum((-2, -1))
        expected = -10 * torch.log10(S.abs().pow(2).sum((-2, -1)) / err).mean()
        torch.testing.assert_close(batch_loss(Constant(logit), batch, "psa"), expected, rtol=1e-4, atol=1e-4)
    # Half of the mixture to each source scores better than all of it to both.
    assert batch_loss(Constant(0.0), batch, "psa") < batch_loss(Constant(4.0), batch, "psa")


def test_the_sound_of_pixels_ratio_target_learns_too():
    """The ratio-mask L1 of Sound of Pixels stays available and learns on the tiny set."""
    torch.set_num_threads(1)
    cfg = DeepConfig(**{**SMALL, "target": "ratio"})
    _, metrics = train_deep(_clips(0), _clips(1), cfg, AUDIO, progress=False)
    assert metrics["val_loss"].iloc[-1] < metrics["val_loss"].iloc[0]
    assert metrics["val_sdr"].max() > 6.0, metrics


def test_learns_on_a_tiny_set(trained):
    """Validation loss falls and the val SDR clears 6 dB; the same network untrained does not
    (it scores about 3 dB: half of each bin to each source)."""
    cfg, model, metrics = trained
    assert metrics["val_loss"].iloc[-1] < metrics["val_loss"].iloc[0]
    best = metrics["val_sdr"].max()
    untrained = build_separator(cfg, AUDIO, 2).eval()
    val = MixSampler(_clips(1), AUDIO, target=cfg.target)
    _, sdr_untrained = evaluate(untrained, val, val.fixed_pairs(cfg.val_pairs, cfg.seed + 1), cfg, "cpu")
    assert best > 6.0, metrics
    assert sdr_untrained.mean() < 6.0
    assert best > sdr_untrained.mean() + 3.0


def test_swapping_what_is_seen_swaps_the_tracks(trained):
    """The two sides' visual vectors decide which track is which: swapped, the tracks swap;
    and the track conditioned on an instrument is that instrument."""
    cfg, model, _ = trained
    rng = np.random.default_rng(5)
    low, high = _tone(110.0, 3.0, AUDIO.sample_rate, rng, 6), _tone(880.0, 3.0, AUDIO.sample_rate, rng, 2)
    mix = (low + high) / 2
    native = STFTConfig(AUDIO.sample_rate, 256, 64)
    v_low, v_high = np.array([0.95, 0.05], np.float32), np.array([0.05, 0.95], np.float32)
    a = separate_deep(model, mix, AUDIO.sample_rate, native, [v_low, v_high])
    b = separate_deep(model, mix, AUDIO.sample_rate, native, [v_high, v_low])
    np.testing.assert_allclose(a[0], b[1], atol=1e-5)
    np.testing.assert_allclose(a[1], b[0], atol=1e-5)

    def sdr(ref, est):
        return 10 * np.log10(np.sum(ref ** 2) / np.sum((ref - est) ** 2))

    assert sdr(low / 2, a[0]) > 5 and sdr(high / 2, a[1]) > 5
    assert sdr(low / 2, a[1]) < 0  # the track that saw "high" is not the low instrument
    np.testing.assert_allclose(a.sum(axis=0), mix, atol=1e-3)  # normalised masks: tracks sum to the mixture


def test_checkpoint_round_trip(trained, tmp_path):
    cfg, model, _ = trained
    path = tmp_path / "deep.pt"
    save_separator(path, model, NAMES)
    again, checkpoint = load_separator(path, cfg=cfg, label_names=NAMES)
    x, v = torch.randn(2, AUDIO.log_bins, 20), torch.rand(2, 2)
    with torch.no_grad():
        torch.testing.assert_close(model(x, v), again(x, v))
    assert checkpoint["audio"] == dataclasses.asdict(AUDIO)  # the model's own audio settings


def test_clear_errors_for_bad_weights(trained, tmp_path):
    cfg, model, _ = trained
    path = tmp_path / "deep.pt"
    save_separator(path, model, NAMES)
    with pytest.raises(InputError, match="does not exist"):
        load_separator(tmp_path / "missing.pt")
    with pytest.raises(InputError, match="trained on low, high; this dataset has cello, flute"):
        load_separator(path, label_names=["cello", "flute"])
    with pytest.raises(InputError, match="channels 48 .config: 64."):
        load_separator(path, cfg=dataclasses.replace(cfg, channels=64))
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(InputError, match="not a checkpoint of avsep's deep separator"):
        load_separator(tmp_path / "foreign.pt")
    state = torch.load(path, weights_only=False)
    state["state_dict"]["masknet.inp.weight"] = torch.zeros(3, 3, 3)
    torch.save(state, tmp_path / "reshaped.pt")
    with pytest.raises(InputError, match="does not fit the network"):
        load_separator(tmp_path / "reshaped.pt")


def test_resume_equals_an_uninterrupted_run(tmp_path):
    torch.set_num_threads(1)
    cfg = DeepConfig(**{**SMALL, "epochs": 3, "steps_per_epoch": 3, "val_pairs": 4})
    train, val = _clips(0, n_per=2, seconds=2.0), _clips(1, n_per=1, seconds=2.0)
    whole, m_whole = train_deep(train, val, cfg, AUDIO, progress=False)
    ckpt = tmp_path / "resume.pt"
    # "Killed" after two epochs: a run of the same configuration stopped there...
    killed_at = DeepConfig(**{**SMALL, "epochs": 3, "steps_per_epoch": 3, "val_pairs": 4})

    class Stop(Exception):
        pass

    logs = []

    def log(msg):
        logs.append(msg)
        if msg.startswith("epoch 2/"):
            raise Stop

    with pytest.raises(Stop):
        train_deep(train, val, killed_at, AUDIO, progress=False, checkpoint=ckpt, log=log)
    resumed, m_resumed = train_deep(train, val, cfg, AUDIO, progress=False, checkpoint=ckpt, log=logs.append)
    assert any("resuming" in line for line in logs)
    cols = ["epoch", "loss", "val_loss", "val_sdr"]
    # Epoch 2's checkpoint was not written (killed while logging it): epoch 2 ran again.
    np.testing.assert_allclose(m_resumed[cols].to_numpy(), m_whole[cols].to_numpy(), rtol=1e-6)
    for (k, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, msg=k)


def test_clips_file_round_trip(tmp_path):
    clips = _clips(0, n_per=1, seconds=1.0)
    write_clips(tmp_path / "c.h5", clips, split="train")
    back = read_clips(tmp_path / "c.h5")
    assert back.video_ids == clips.video_ids and back.labels == clips.labels and back.label_names == NAMES
    np.testing.assert_array_equal(back.audio[1], clips.audio[1])
    np.testing.assert_array_equal(back.visual[0], clips.visual[0])


def test_what_is_seen_of_each_side():
    record = {"item": "mix000", "side_probs": {"left": {"low": 0.8, "high": 0.2}, "right": {"low": 0.1, "high": 0.9}},
              "positions": ["left", "right"], "boxes": [None, None]}
    np.testing.assert_allclose(record_vector(record, "right", NAMES), [0.1, 0.9])
    with pytest.raises(InputError, match="no probability for cello"):
        record_vector(record, "left", ["cello", "low"])
    frames = np.zeros((2, 40, 80, 3), np.uint8)
    frames[:, :, 40:] = 200  # the right half is bright
    right = region_images(frames, record, "right", 16)
    left = region_images(frames, record, "left", 16)
    assert right.shape == (2, 16, 16, 3) and right.mean() > 150 and left.mean() < 10
    boxed = {**record, "boxes": [[0, 0, 20, 20], None]}
    assert region_images(frames, boxed, "left", 8).mean() < 10
    with pytest.raises(InputError, match="needs each source's side"):
        region_images(frames, record, "unknown", 8)
