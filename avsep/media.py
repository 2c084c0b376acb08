"""Video and audio I/O through ffmpeg.

All decoding goes through ffmpeg-python, driving the static ffmpeg binary that ships inside
the ``imageio-ffmpeg`` wheel, so no system package is needed. That wheel carries no
``ffprobe``; :func:`probe_media` therefore reads the stream report that ``ffmpeg -i`` prints,
which holds the same fields ffprobe would give (duration, codecs, sample rate, channel
layout, frame size and rate).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import ffmpeg
import numpy as np
import soundfile as sf

from avsep.errors import InputError

__all__ = [
    "MediaError",
    "MediaInfo",
    "ffmpeg_exe",
    "probe_media",
    "read_audio_stream",
    "decode_audio",
    "extract_audio",
    "decode_frames",
    "iter_frames",
    "frame_times",
]


class MediaError(InputError):
    """A media file is missing, unreadable, or lacks a stream the pipeline needs.

    Attributes:
        path: the file.
        problem: what is wrong with it, without the path.
    """

    def __init__(self, path: str | Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: {problem}")


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """What ffmpeg reports about a media file.

    Attributes:
        duration: container duration in seconds.
        has_audio / has_video: whether a stream of that kind exists.
        sample_rate: audio sample rate in Hz (0 without audio).
        channels: audio channel count (0 without audio).
        width, height: frame size in pixels (0 without video).
        fps: average frame rate in frames per second (0 without video).
        audio_codec, video_codec: codec names, "" when absent.
    """

    duration: float
    has_audio: bool
    has_video: bool
    sample_rate: int = 0
    channels: int = 0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    audio_codec: str = ""
    video_codec: str = ""


# Channel counts of the layout names ffmpeg prints (libavutil/channel_layout.c).
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "3.0": 3,
    "3.0(back)": 3,
    "4.0": 4,
    "quad": 4,
    "quad(side)": 4,
    "3.1": 4,
    "5.0": 5,
    "5.0(side)": 5,
    "4.1": 5,
    "5.1": 6,
    "5.1(side)": 6,
    "6.0": 6,
    "6.0(front)": 6,
    "hexagonal": 6,
    "6.1": 7,
    "6.1(back)": 7,
    "6.1(front)": 7,
    "7.0": 7,
    "7.0(front)": 7,
    "7.1": 8,
    "7.1(wide)": 8,
    "7.1(wide-side)": 8,
    "octagonal": 8,
    "downmix": 2,
}

_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM_RE = re.compile(r"^\s*Stream #\d+:\d+.*?: (Audio|Video): (.*)$", re.MULTILINE)
_RATE_RE = re.compile(r"(\d+) Hz")
_SIZE_RE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_FPS_RE = re.compile(r"([\d.]+)(k?) fps")
_TBR_RE = re.compile(r"([\d.]+)(k?) tbr")


def _parse_rate(match: re.Match | None) -> float:
    if match is None:
        return 0.0
    value = float(match.group(1))
    return value * 1000.0 if match.group(2) == "k" else value


def _audio_channels(fields: list[str]) -> int:
    for field in fields:
        field = field.strip()
        if field in _LAYOUT_CHANNELS:
            return _LAYOUT_CHANNELS[field]
        m = re.fullmatch(r"(\d+) channels(?: \(.*\))?", field)
        if m:
            return int(m.group(1))
    return 0


def parse_stream_report(report: str) -> MediaInfo:
    """Parse the stream report that ``ffmpeg -i <file>`` writes to stderr."""
    duration = 0.0
    m = _DURATION_RE.search(report)
    if m:
        h, mnt, s = m.groups()
        duration = int(h) * 3600 + int(mnt) * 60 + float(s)
    info: dict = {"duration": duration, "has_audio": False, "has_video": False}
    for kind, desc in _STREAM_RE.findall(report):
        codec = desc.split()[0].rstrip(",")
        if kind == "Audio" and not info["has_audio"]:
            rate = _RATE_RE.search(desc)
            info.update(
                has_audio=True,
                audio_codec=codec,
                sample_rate=int(rate.group(1)) if rate else 0,
                channels=_audio_channels(desc.split(",")),
            )
        elif kind == "Video" and not info["has_video"]:
            # Cover art is reported as a video stream; it is not a video.
            if "attached pic" in desc:
                continue
            size = _SIZE_RE.search(desc)
            fps = _parse_rate(_FPS_RE.search(desc)) or _parse_rate(_TBR_RE.search(desc))
            info.update(
                has_video=True,
                video_codec=codec,
                width=int(size.group(1)) if size else 0,
                height=int(size.group(2)) if size else 0,
                fps=fps,
            )
    return MediaInfo(**info)


def probe_media(path: str | Path) -> MediaInfo:
    """Report the streams of a media file.

    Raises:
        MediaError: the file does not exist or ffmpeg cannot open it; the message names the
            file and quotes ffmpeg's reason.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(path, "file not found")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
    )
    report = proc.stderr
    if "Input #0" not in report:
        reason = _ffmpeg_reason(report)
        raise MediaError(path, f"unreadable or truncated container ({reason})")
    return parse_stream_report(report)


# ffmpeg's words for a file whose packets stop early or do not parse.
_DAMAGE_RE = re.compile(r"partial file|Invalid data|error reading|truncat|corrupt|EOF", re.IGNORECASE)
_OUT_TIME_RE = re.compile(r"^out_time_us=(\d+)$", re.MULTILINE)


def read_audio_stream(path: str | Path) -> tuple[float, str | None]:
    """Read every packet of the first audio stream without decoding it (a stream copy to
    ffmpeg's null muxer, a few milliseconds per file).

    The container header may promise more than the file holds: a download cut short keeps
    its header when the index sits at the front. Reading the packets finds that out.

    Returns:
        ``(seconds, damage)``: the audio stream's length in seconds, and ffmpeg's words for
        the damage it met, or ``None`` when every packet was read.
    """
    path = Path(path)
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
         "-map", "0:a:0", "-c", "copy", "-f", "null", "-", "-progress", "pipe:1"],
        capture_output=True,
        text=True,
        errors="replace",
    )
    times = _OUT_TIME_RE.findall(proc.stdout)
    seconds = int(times[-1]) / 1e6 if times else 0.0
    damage = [ln.strip() for ln in proc.stderr.splitlines() if _DAMAGE_RE.search(ln)]
    if proc.returncode != 0 and not damage:
        damage = [_ffmpeg_reason(proc.stderr)]
    return seconds, (re.sub(r"^\[[^\]]*\]\s*", "", damage[0]) if damage else None)


def _ffmpeg_reason(stderr: str) -> str:
    """The most telling line of an ffmpeg error output."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for phrase in ("moov atom not found", "Invalid data found when processing input", "No such file or directory"):
        if any(phrase in ln for ln in lines):
            return phrase
    return re.sub(r"^\[[^\]]*\]\s*", "", lines[-1]) if lines else "no output from ffmpeg"


def _run(stream, path: Path, what: str) -> bytes:
    try:
        out, _ = stream.run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True, quiet=True)
    except ffmpeg.Error as err:
        reason = _ffmpeg_reason(err.stderr.decode("utf-8", "replace"))
        raise MediaError(path, f"cannot decode {what} ({reason})") from None
    return out


def _mono_audio(path: Path, target: str, sample_rate: int, **options):
    """The ffmpeg command for the first audio stream of ``path`` as mono 32-bit float at
    ``sample_rate``: every layout downmixed by ffmpeg's standard matrix, resampled by
    ``aresample``."""
    return (
        ffmpeg.input(str(path))
        .audio.output(target, acodec="pcm_f32le", ac=1, ar=int(sample_rate), **options)
        .global_args("-nostdin")
    )


def decode_audio(path: str | Path, *, sample_rate: int) -> np.ndarray:
    """Decode the first audio stream as mono float32 at ``sample_rate`` Hz.

    Every channel layout is downmixed by ffmpeg's standard matrix (``-ac 1``) and resampled
    by ffmpeg's ``aresample``.

    Returns:
        np.ndarray: shape ``(nb_samples,)``, float32.
    """
    path = Path(path)
    out = _run(_mono_audio(path, "pipe:", sample_rate, format="f32le"), path, "audio")
    audio = np.frombuffer(out, dtype="<f4").astype(np.float32)
    if audio.size == 0:
        raise MediaError(path, "audio stream decoded to zero samples")
    return audio


def extract_audio(path: str | Path, out: str | Path, *, sample_rate: int) -> int:
    """Write the first audio stream of ``path`` to ``out`` as a mono 32-bit float WAV.

    ffmpeg downmixes, resamples and writes the file itself, so audio of any length passes
    through in small buffers and never sits whole in memory. ``-bitexact`` and no metadata
    keep the bytes the same from one run to the next. The command is
    :func:`decode_audio`'s, writing a file instead of a pipe.

    Returns:
        The number of samples written.
    """
    path, out = Path(path), Path(out)
    stream = _mono_audio(path, str(out), sample_rate, format="wav", map_metadata=-1, fflags="+bitexact",
                         **{"flags:a": "+bitexact"})
    _run(stream.overwrite_output(), path, "audio")
    frames = sf.info(str(out)).frames
    if frames == 0:
        raise MediaError(path, "audio stream decoded to zero samples")
    return frames


#: How decode_frames picks a frame for each time stamp; part of the frames cache's params,
#: so that a change re-extracts the frames.
FRAME_SAMPLING = "on-screen"  # ffmpeg fps filter with round=up (before: round=near)


def _frame_command(path: Path, fps: float, width: int, height: int) -> list[str]:
    stream = (
        ffmpeg.input(str(path))
        .video.filter("fps", fps=fps, round="up")
        .filter("scale", width, height, flags="area")
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .global_args("-nostdin")
    )
    return ffmpeg.compile(stream, cmd=ffmpeg_exe())


def iter_frames(
    path: str | Path, *, fps: float, width: int, height: int, batch: int = 32
) -> Iterator[np.ndarray]:
    """Stream :func:`decode_frames`'s frames in batches of at most ``batch``, in order.

    ffmpeg's output is read a batch at a time, so a video of any length passes through
    in ``batch`` frames of memory (a 30-minute video at 1 fps and 320 x 320 is 553 MB
    whole). The frames are those :func:`decode_frames` returns, to the byte; frame ``i``
    is at ``i / fps`` seconds. ffmpeg's messages go to a temporary file, so that a chatty
    decoder can never block the pipe.

    Yields:
        uint8 arrays, shape ``(n, height, width, 3)``, RGB, ``1 <= n <= batch``.

    Raises:
        MediaError: ffmpeg fails, or the stream decodes to zero frames.
    """
    path = Path(path)
    frame_bytes = width * height * 3
    n = 0
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(_frame_command(path, fps, width, height), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=log)
        try:
            while True:
                data = proc.stdout.read(frame_bytes * batch)
                count = len(data) // frame_bytes
                if count:
                    n += count
                    # A copy, so that the caller may keep or change the batch.
                    yield np.frombuffer(data, np.uint8, count * frame_bytes).reshape(count, height, width, 3).copy()
                if len(data) < frame_bytes * batch:
                    break
            proc.stdout.close()
            returncode = proc.wait()
        finally:
            if proc.poll() is None:  # the caller stopped early, or an error
                proc.kill()
                proc.wait()
        if returncode != 0:
            log.seek(0)
            reason = _ffmpeg_reason(log.read().decode("utf-8", "replace"))
            raise MediaError(path, f"cannot decode video frames ({reason})")
    if n == 0:
        raise MediaError(path, "video stream decoded to zero frames")


def decode_frames(
    path: str | Path, *, fps: float, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sample frames at ``fps`` and resize them to ``width`` x ``height``.

    Frame ``i`` is the input frame on screen at ``t = i / fps`` (the last one that starts
    at or before ``t``), so sampling is uniform in time even for variable-frame-rate input.
    That is ffmpeg's ``fps`` filter with ``round=up``: its default (``near``) rounds each
    input frame's time to the nearest output slot and keeps the last frame of the slot,
    which shows up to half an output period after ``t``. The whole video is held in
    memory; :func:`iter_frames` streams it.

    Returns:
        frames: uint8 array, shape ``(nb_frames, height, width, 3)``, RGB.
        timestamps: float64 array, shape ``(nb_frames,)``, seconds from the stream start.
    """
    frames = np.concatenate(list(iter_frames(path, fps=fps, width=width, height=height)))
    return frames, frame_times(len(frames), fps)


def frame_times(n: int, fps: float) -> np.ndarray:
    """The time stamps of ``n`` frames sampled at ``fps``: ``i / fps`` seconds."""
    return np.arange(n, dtype=np.float64) / float(fps)
