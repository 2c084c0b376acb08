"""A duet with true stems, laid out as a test mixture: stems at the pipeline's rate and length,
sides from its boxes or none."""

import json

import numpy as np
import soundfile as sf

from avsep.files import read_wav, write_wav
from avsep.mixtures import build_duet_reference


def test_stems_are_resampled_cut_to_the_audio_and_sides_kept(tmp_path):
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(16000).astype(np.float32) * 0.1  # 1 s at 16 kHz
    write_wav(tmp_path / "duet.wav", audio, 16000)
    t = np.arange(int(1.02 * 44100)) / 44100  # a little longer, at 44.1 kHz, in stereo
    tone = np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "cello.wav", np.stack([tone, tone], axis=1), 44100)
    sf.write(tmp_path / "flute.wav", 0.5 * tone, 44100)
    out = tmp_path / "ref"
    out.mkdir()
    meta = build_duet_reference("duet-7", audio=tmp_path / "duet.wav",
                                stems={"cello": tmp_path / "cello.wav", "flute": tmp_path / "flute.wav"},
                                out_dir=out, sides={"cello": "right", "flute": "left"})
    assert meta["kind"] == "duet" and json.loads((out / "mixture.json").read_text()) == meta
    assert {s["instrument"]: s["position"] for s in meta["sources"]} == {"cello": "right", "flute": "left"}
    for name in ("cello", "flute"):
        stem, sr = read_wav(out / f"{name}.wav")
        assert sr == 16000 and stem.shape == (16000,)
        spectrum = np.abs(np.fft.rfft(stem))
        assert abs(np.argmax(spectrum) * sr / len(stem) - 440) < 3
    np.testing.assert_array_equal(read_wav(out / "mixture.wav")[0], audio)
    unplaced = build_duet_reference("duet-7", audio=tmp_path / "duet.wav", stems={"cello": tmp_path / "cello.wav"},
                                    out_dir=out)
    assert unplaced["sources"][0]["position"] is None
