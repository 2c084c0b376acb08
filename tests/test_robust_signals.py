"""Awkward but valid signals: any channel layout and rate, digital silence, DC offset,
clipping, variable frame rates and odd frame sizes. Nothing may turn into NaN or Inf on the
way through extraction, NMF, masks, MIML inputs and metrics."""

import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch

from avsep.bases import NMFConfig, bases_of_file, compute_bases, read_bases
from avsep.evaluation.scores import evaluate_mixture
from avsep.files import write_wav
from avsep.media import decode_frames, extract_audio, ffmpeg_exe
from avsep.miml.bags import build_bags
from avsep.miml.model import MIMLNet
from avsep.miml.predict import audio_tags, predict_instrument
from avsep.separation import guided_nmf_separate, soft_masks
from avsep.transforms import STFTConfig
from conftest import make_media

SR = 16000
CFG = STFTConfig(SR, 1024, 256)
NMF = NMFConfig(n_components=6, n_iter=40, chunk_seconds=1.0)
SINE_RMS = 0.125 / np.sqrt(2)  # ffmpeg's sine source has amplitude 1/8


def _peak_hz(audio, sr, lo=50.0):
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    freqs = np.fft.rfftfreq(len(audio), 1 / sr)
    spectrum[freqs < lo] = 0
    return freqs[np.argmax(spectrum)], spectrum, freqs


@pytest.mark.parametrize(
    "channels, rate",
    [(1, 8000), (2, 44100), (6, 48000), (2, 96000)],
    ids=["mono-8k", "stereo-44k1", "5.1-48k", "stereo-96k"],
)
def test_any_layout_and_rate_becomes_mono_at_the_configured_rate(tmp_path, channels, rate):
    video = make_media(tmp_path / "v.mkv", seconds=2.0, freq=1000.0, sample_rate=rate, channels=channels,
                       acodec="pcm_s16le", vcodec="ffv1")
    n = extract_audio(video, tmp_path / "a.wav", sample_rate=SR)
    audio, sr = sf.read(tmp_path / "a.wav", dtype="float32")
    assert sr == SR and audio.ndim == 1 and n == len(audio)
    assert len(audio) == pytest.approx(2.0 * SR, abs=0.01 * SR)
    peak, _, _ = _peak_hz(audio, SR)
    assert peak == pytest.approx(1000.0, abs=1.0)
    # The same tone in every channel keeps its level through the downmix (no summing up).
    rms = float(np.sqrt(np.mean(audio[SR // 10 : -SR // 10] ** 2)))
    assert rms == pytest.approx(SINE_RMS, rel=0.03)


def test_stereo_downmix_keeps_both_channels(tmp_path):
    """A different tone on each side: the mono track holds both, at half level each."""
    path = tmp_path / "lr.mkv"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc=size=64x48:rate=5:duration=2",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=2",
                    "-f", "lavfi", "-i", "sine=frequency=1320:sample_rate=44100:duration=2",
                    "-filter_complex", "[1:a][2:a]amerge=inputs=2[a]", "-map", "0:v", "-map", "[a]",
                    "-c:v", "ffv1", "-c:a", "pcm_s16le", str(path)], check=True)
    extract_audio(path, tmp_path / "a.wav", sample_rate=SR)
    audio, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    _, spectrum, freqs = _peak_hz(audio, SR)
    level = {f: spectrum[np.argmin(np.abs(freqs - f))] for f in (440, 1320, 880)}
    assert level[440] == pytest.approx(level[1320], rel=0.1)
    assert level[880] < 0.01 * level[440]


def test_dc_offset_and_clipped_audio_decode_finite(tmp_path):
    video = make_media(tmp_path / "v.mkv", seconds=2.0, vcodec="ffv1", acodec="pcm_f32le",
                       audio_filter="volume=30,aeval=val(0)+0.4")
    extract_audio(video, tmp_path / "a.wav", sample_rate=SR)
    audio, _ = sf.read(tmp_path / "a.wav", dtype="float32")
    assert np.isfinite(audio).all()
    assert audio.mean() == pytest.approx(0.4, abs=0.05) and audio.max() > 1.0


def _signals():
    t = np.arange(3 * SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return {
        "silence": np.zeros(3 * SR, np.float32),
        "dc": np.full(3 * SR, 0.5, np.float32),
        "dc_tone": tone + 0.5,
        "clipped": np.clip(tone * 20, -1, 1).astype(np.float32),
        "overrange": (tone * 8).astype(np.float32),  # float audio past full scale
        "tiny": (tone * 1e-2).astype(np.float32),  # -54 dBFS, just over nmf.silence_db
    }


@pytest.mark.parametrize("name", sorted(_signals()))
def test_nmf_bases_and_miml_inputs_stay_finite(tmp_path, name):
    audio = _signals()[name]
    write_wav(tmp_path / "a.wav", audio, SR)
    bases_of_file(tmp_path / "a.wav", tmp_path / "a.h5", CFG, NMF)
    b, _ = read_bases(tmp_path / "a.h5", magnitude=True)
    for field in ("magnitude", "W", "H", "basis_energy", "energy_db", "objective"):
        assert np.isfinite(getattr(b, field)).all(), field
    assert b.active.any() == (name != "silence")
    bags = build_bags([("v", b.W, b.active)], {"v": ["cello"]}, ["cello", "flute"])
    assert np.isfinite(bags.bags).all() and (bags.bags <= 1).all()
    net = MIMLNet(CFG.n_bins, 2, hidden=(32, 16), sub_concepts=2).eval()
    if len(bags.bags):
        with torch.no_grad():
            scores, relation = net(torch.from_numpy(bags.bags))
        assert torch.isfinite(scores).all() and torch.isfinite(relation).all()
    label, probs = predict_instrument(net, audio, CFG, NMF, ["cello", "flute"])
    assert np.isfinite(probs).all() and (label == "") == (name == "silence")
    # The audio tags rank the same scores: their first name is the label evaluation reuses.
    tags = audio_tags(net, audio, CFG, NMF, ["cello", "flute"])
    assert tags["silent"] == (name == "silence") and (tags["ranked"] or [""])[0] == label


@pytest.mark.parametrize("name", sorted(_signals()))
def test_masks_separation_and_metrics_stay_finite(name):
    rng = np.random.default_rng(0)
    signals = _signals()
    target = signals[name]
    other = (0.2 * rng.standard_normal(target.size)).astype(np.float32)
    mixture = 0.5 * target + 0.5 * other
    dictionaries = [compute_bases(s, CFG, NMF).W.transpose(1, 0, 2).reshape(CFG.n_bins, -1)
                    for s in (signals["clipped"], other)]
    estimates, objective, _ = guided_nmf_separate(mixture, dictionaries, CFG, chunk_seconds=1.0, n_iter=30)
    assert np.isfinite(estimates).all() and np.isfinite(objective).all()
    tables = [evaluate_mixture("m", mixture, {"a": 0.5 * target, "b": 0.5 * other},
                               {"nmf": {"a": estimates[0], "b": estimates[1]},
                                "silent": {"a": np.zeros_like(mixture), "b": estimates[1]}}, backend=backend)
              for backend in ("mir_eval", "shared")]
    # Both backends agree, the edge cases included (except on an exact estimate, where both
    # report some 300 dB of numerical noise).
    real = tables[0]["sdr"] < 100
    np.testing.assert_allclose(tables[0]["sdr"][real], tables[1]["sdr"][real], atol=1e-3)
    for t in tables:
        assert np.isfinite(t.loc[~t["silent_reference"], ["sdr", "sar", "sdri"]].to_numpy()).all()
    table = tables[0]
    defined = table[~table["silent_reference"]]
    # With one audible source there is nothing to interfere: SIR is undefined, not infinite.
    if name == "silence":
        assert defined["sir"].isna().all()
    else:
        assert np.isfinite(defined["sir"]).all()
    # Only a silent reference leaves the metrics undefined (NaN, flagged, skipped by summaries).
    assert set(table.loc[table["silent_reference"], "instrument"]) == ({"a"} if name == "silence" else set())
    silent_rows = table[table["silent_estimate"]]
    assert list(zip(silent_rows["method"], silent_rows["instrument"])) == [("silent", "a")]
    if name != "silence":
        # An all-zero estimate scores as noise: far below anything useful.
        sdr = table.set_index(["method", "instrument"])["sdr"]
        assert sdr[("silent", "a")] < min(-15.0, sdr[("mixture", "a")])


def test_masks_of_all_zero_sources_share_the_bin():
    masks = soft_masks([np.zeros((3, 4)), np.zeros((3, 4))], power=2.0)
    np.testing.assert_array_equal(masks, 0.5)


def test_variable_frame_rate_is_sampled_uniformly_in_time(tmp_path):
    # 20 frames at 10 fps, frame n at grey level 10 n, with a 0.3 s hole after the 8th
    # (n = 0..7 at n / 10 s, then n / 10 + 0.3 s; a hole the 10 fps time base can hold):
    # each sample is the frame on screen at its time stamp, held through the hole.
    ramp = "color=c=black:s=32x24:r=10:d=2,format=gray,geq=lum='10*N',format=yuv420p"
    video = make_media(tmp_path / "vfr.mp4", seconds=2.0, fps=10, audio=False, video_source=ramp,
                       extra=["-vf", "setpts='N/10/TB+if(gte(N,8),0.3/TB,0)'", "-fps_mode", "vfr"])
    frames, stamps = decode_frames(video, fps=4.0, width=32, height=24)
    assert len(frames) == pytest.approx(4.0 * 2.3, abs=1.5)
    shown = np.rint(frames.mean(axis=(1, 2, 3)) / 10)  # which source frame each one is
    start = np.where(np.arange(20) < 8, np.arange(20) / 10, np.arange(20) / 10 + 0.3)
    on_screen = np.searchsorted(start, stamps + 1e-6, side="right") - 1  # the last frame begun by then
    np.testing.assert_array_equal(shown, on_screen)


def test_odd_frame_sizes_are_resized(tmp_path):
    video = make_media(tmp_path / "odd.mkv", seconds=1.0, size="161x97", vcodec="ffv1", fps=5)
    frames, _ = decode_frames(video, fps=5.0, width=64, height=48)
    assert frames.shape == (5, 48, 64, 3) and frames.std() > 10
