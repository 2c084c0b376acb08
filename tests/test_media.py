"""ffmpeg probing and decoding on real files written by ffmpeg."""

import numpy as np
import pytest

from avsep.dataset import DatasetError, build_manifest
from avsep.media import MediaError, decode_audio, decode_frames, parse_stream_report, probe_media
from conftest import make_media


def test_probe_reports_streams(tmp_path):
    info = probe_media(make_media(tmp_path / "a.mp4", seconds=2.0, size="320x240", fps=25,
                                  sample_rate=44100, channels=2))
    assert info.has_audio and info.has_video
    assert (info.width, info.height, info.fps) == (320, 240, 25.0)
    assert (info.sample_rate, info.channels) == (44100, 2)
    assert info.duration == pytest.approx(2.0, abs=0.05)


def test_parse_stream_report_layouts_and_rates():
    report = """Input #0, matroska,webm, from 'x.mkv':
  Duration: 01:02:03.50, start: 0.000000, bitrate: 1 kb/s
  Stream #0:0(eng): Video: vp9 (Profile 0), yuv420p(tv), 1280x720, SAR 1:1 DAR 16:9, 29.97 fps, 29.97 tbr, 1k tbn (default)
  Stream #0:1(eng): Audio: opus, 48000 Hz, 5.1, fltp (default)
"""
    info = parse_stream_report(report)
    assert info.duration == pytest.approx(3723.5)
    assert (info.width, info.height, info.fps) == (1280, 720, 29.97)
    assert (info.sample_rate, info.channels, info.audio_codec) == (48000, 6, "opus")


def test_decode_audio_is_mono_at_requested_rate_and_keeps_the_tone(tmp_path):
    path = make_media(tmp_path / "tone.mp4", seconds=2.0, freq=440.0, sample_rate=44100, channels=2)
    audio = decode_audio(path, sample_rate=16000)
    assert audio.ndim == 1 and audio.dtype == np.float32
    assert len(audio) == pytest.approx(2.0 * 16000, abs=0.03 * 16000)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    peak_hz = np.argmax(spectrum) * 16000 / len(audio)
    assert peak_hz == pytest.approx(440.0, abs=2.0)


def test_decode_frames_samples_at_fps_with_timestamps(tmp_path):
    path = make_media(tmp_path / "v.mp4", seconds=4.0, fps=25)
    frames, stamps = decode_frames(path, fps=2.0, width=64, height=48)
    assert frames.shape == (8, 48, 64, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # real picture content, not a blank


def test_each_frame_is_the_picture_shown_at_its_timestamp(tmp_path):
    """A 25 fps video whose brightness rises by 2.5 grey levels a frame: the brightness of
    a decoded frame says which source frame it is, so its time stamp can be checked
    against the picture rather than against the formula that made it."""
    ramp = "color=c=black:s=64x48:r=25:d=4,format=gray,geq=lum='2.5*N',format=yuv420p"
    path = make_media(tmp_path / "ramp.mp4", seconds=4.0, fps=25, audio=False, video_source=ramp)
    frames, stamps = decode_frames(path, fps=2.0, width=64, height=48)
    assert len(frames) == 8 and np.all(np.diff(stamps) > 0)
    shown = frames.mean(axis=(1, 2, 3)) / 2.5 / 25  # the time of the source frame on screen
    np.testing.assert_allclose(shown, stamps, atol=1.5 / 25)  # within a source frame or so


def test_corrupt_file_is_named_with_its_problem(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 50)
    with pytest.raises(MediaError, match=r"broken\.mp4: unreadable or truncated container"):
        probe_media(bad)


def test_truncated_file_is_refused(tmp_path):
    good = make_media(tmp_path / "full.mp4", seconds=2.0)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(MediaError, match=r"cut\.mp4: unreadable or truncated container"):
        probe_media(cut)


def test_manifest_names_audioless_and_corrupt_videos(tmp_path):
    root = tmp_path / "data"
    for i in range(2):
        make_media(root / "solo" / "cello" / f"c{i}.mp4", seconds=1.0)
    make_media(root / "solo" / "cello" / "mute.mp4", seconds=1.0, audio=False)
    (root / "solo" / "cello" / "junk.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(DatasetError) as err:
        build_manifest(root, test_fraction=0.34, val_fraction=0.0, chunk_seconds=0.5)
    text = str(err.value)
    assert "mute.mp4: no audio stream" in text
    assert "junk.mp4: unreadable or truncated container" in text


def test_streamed_frames_equal_ffmpegs_whole_output_in_any_batch_size(tmp_path):
    """iter_frames reads ffmpeg's pipe a batch at a time (extract_frames streams a video of
    any length through it); the frames must be ffmpeg's, to the byte, whatever the batch."""
    import subprocess

    from avsep.media import _frame_command, iter_frames

    path = make_media(tmp_path / "v.mp4", seconds=3.0, fps=25)
    whole = subprocess.run(_frame_command(path, 5.0, 40, 30), capture_output=True, check=True).stdout
    expected = np.frombuffer(whole, np.uint8).reshape(-1, 30, 40, 3)
    assert len(expected) == 15
    for batch in (1, 4, 15, 64):
        batches = list(iter_frames(path, fps=5.0, width=40, height=30, batch=batch))
        assert all(1 <= len(b) <= batch for b in batches)
        np.testing.assert_array_equal(np.concatenate(batches), expected)


def test_streamed_frames_stop_ffmpeg_when_the_reader_stops(tmp_path):
    import gc

    import psutil

    from avsep.media import iter_frames

    path = make_media(tmp_path / "v.mp4", seconds=6.0, fps=25)
    stream = iter_frames(path, fps=25.0, width=64, height=48, batch=2)
    next(stream)
    ffmpeg = [c for c in psutil.Process().children() if "ffmpeg" in c.name()]
    assert ffmpeg, "no ffmpeg process while frames are being read"
    stream.close()
    del stream
    gc.collect()
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in ffmpeg)


def test_streamed_frames_of_a_broken_video_raise_a_media_error(tmp_path):
    from avsep.media import iter_frames

    path = make_media(tmp_path / "v.mp4", seconds=2.0, fps=25)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(path.read_bytes()[: 2000])  # the header without its index
    with pytest.raises(MediaError, match=r"broken\.mp4: cannot decode video frames \(moov atom not found\)"):
        list(iter_frames(broken, fps=5.0, width=32, height=24))
