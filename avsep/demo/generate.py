"""The embedded demo dataset: real MP4 videos in the MUSIC layout, generated offline.

:func:`generate_demo_dataset` renders every video of the plan (:mod:`avsep.demo.plan`):
the players' sprites (:mod:`avsep.demo.pictures`) in their scenes (:mod:`avsep.demo.scene`)
and their recorded melodies (:mod:`avsep.demo.sound`), encoded by ffmpeg as H.264 + AAC
MP4s. Beside the videos it writes ``<root>/splits.tsv`` (the split of every video, which the
manifest honours), ``annotations/<video_id>.tsv`` (the instrument boxes it drew, per frame,
for training detectors), ``annotations/styles.tsv`` (the look of every player),
``annotations/recording.tsv`` (the recording of every player) and, for every duet, its true
stems.

Run ``python -m avsep.demo <root>`` to generate a dataset by hand.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image
from scipy.io import wavfile

from avsep.dataset import STEMS_DIR
from avsep.demo.plan import DEFAULT_SPLIT, DemoSpec, DemoVideo, plan_demo
from avsep.demo.scene import Lighting, draw_background, make_player, place_player
from avsep.demo.sound import VOICES, Recording, draw_recording, render_melody
from avsep.files import atomic_dir
from avsep.media import ffmpeg_exe

__all__ = ["RECORDING_COLUMNS", "STYLE_COLUMNS", "generate_demo_dataset", "main"]


def _write_video(
    path: Path, frames: list[np.ndarray], audio: np.ndarray, *, fps: float, sample_rate: int, tmp: Path
) -> None:
    """Encode RGB frames and stereo audio into an H.264 + AAC MP4."""
    wav = tmp / f"{path.stem}.wav"
    sf.write(wav, audio, sample_rate, subtype="FLOAT")
    height, width = frames[0].shape[:2]
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:",
        "-i", str(wav),
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-threads", "1",
        # ffmpeg's fast AAC coder: 0.15 s for a 15 s clip where its default (twoloop) takes
        # 0.36, a third of generating the demo. Decoded, a duet's audio is 24.8 dB from its
        # WAV (SNR) against twoloop's 26.9: codec noise far below any separation's errors.
        "-c:a", "aac", "-aac_coder", "fast", "-b:a", "128k",
        "-shortest", "-fflags", "+bitexact", "-map_metadata", "-1", "-movflags", "+faststart",
        str(path),
    ]
    proc = subprocess.run(cmd, input=np.stack(frames).tobytes(), capture_output=True)
    wav.unlink()
    if proc.returncode:
        raise RuntimeError(f"ffmpeg could not encode {path}: {proc.stderr.decode(errors='replace')}")


#: Columns of ``annotations/recording.tsv``.
RECORDING_COLUMNS = ["video_id", "instrument"] + [f.name for f in dataclasses.fields(Recording)]


def _render_video(job: tuple) -> list[dict]:
    """Render one demo video (solo or duet); returns its rows of ``recording.tsv``."""
    root, video, spec = job
    rng = np.random.default_rng([spec.seed, zlib.crc32(video.rel.encode())])
    duet = len(video.instruments) == 2
    width, height, fps = spec.width, spec.height, spec.fps
    # A duet's players share the room and the microphone, each at their own level.
    room = draw_recording(rng)
    recordings = [room] + [dataclasses.replace(room, level=float(rng.uniform(0.2, 0.9))) for _ in video.instruments[1:]]
    parts = [render_melody(inst, spec.seconds, sample_rate=spec.sample_rate, rng=rng, recording=rec)
             * (0.6 if duet else 1.0) for inst, rec in zip(video.instruments, recordings)]
    audio = sum(parts)
    looks = [s.look for s in video.styles]
    if duet:
        x_ranges = [(0.2, 0.3), (0.7, 0.8)]
        players = [make_player(i, look, rng, xr, width, height, (0.45, 0.65))
                   for i, look, xr in zip(video.instruments, looks, x_ranges)]
    else:
        players = [make_player(video.instruments[0], looks[0], rng, (0.2, 0.8), width, height, (0.45, 0.95))]
    background = Image.fromarray(draw_background(width, height, rng)).convert("RGBA")
    lighting = Lighting.draw(rng)
    n_frames = int(round(spec.seconds * fps))
    frames, boxes = [], []
    for i in range(n_frames):
        t = i / fps
        frame = background.copy()
        for inst, player in zip(video.instruments, players):
            sprite, xy, box = place_player(player, t, width, height)
            frame.alpha_composite(sprite, dest=(max(0, xy[0]), max(0, xy[1])),
                                  source=(max(0, -xy[0]), max(0, -xy[1])))
            boxes.append((i, round(t, 4), inst, *(round(float(v), 1) for v in box)))
        frames.append(np.asarray(frame.convert("RGB").point(lighting.lut(t))))
    out = Path(root) / video.rel
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        _write_video(out, frames, audio, fps=fps, sample_rate=spec.sample_rate, tmp=Path(tmp))
    if duet:  # the true stems, which sum to the duet's audio (before its AAC encoding)
        stem_dir = Path(root) / STEMS_DIR / out.stem
        stem_dir.mkdir(parents=True, exist_ok=True)
        for inst, part in zip(video.instruments, parts):
            # scipy's plain float WAV: libsndfile's PEAK chunk would hold the write time.
            wavfile.write(stem_dir / f"{inst}.wav", spec.sample_rate, np.asarray(part, np.float32))
    ann = Path(root) / "annotations" / f"{out.stem}.tsv"
    ann.parent.mkdir(parents=True, exist_ok=True)
    lines = ["frame_index\ttime\tinstrument\tx1\ty1\tx2\ty2"] + ["\t".join(map(str, b)) for b in boxes]
    ann.write_text("\n".join(lines) + "\n")
    return [
        {"video_id": video.video_id, "instrument": inst,
         **{k: round(v, 4) for k, v in dataclasses.asdict(rec).items()}}
        for inst, rec in zip(video.instruments, recordings)
    ]


#: Columns of ``annotations/styles.tsv``.
STYLE_COLUMNS = ["video_id", "instrument", "style", "split", "variant", "palette", "outfit", "size"]


def _style_table(videos: Sequence[DemoVideo]) -> pd.DataFrame:
    rows = [
        {"video_id": v.video_id, "instrument": s.instrument, "style": s.style, "split": v.split,
         "variant": s.look.variant, "palette": s.look.palette, "outfit": s.look.outfit, "size": s.look.size}
        for v in videos
        for s in v.styles
    ]
    return pd.DataFrame(rows, columns=STYLE_COLUMNS)


def generate_demo_dataset(
    root: str | Path,
    spec: DemoSpec,
    *,
    split: Mapping[str, float] = DEFAULT_SPLIT,
    workers: int = 1,
    progress=None,
) -> Path:
    """Generate the demo dataset into ``root`` (written whole, then moved into place).

    Besides the videos and their box annotations, writes ``splits.tsv`` (``video_id``,
    ``split`` of every video), ``annotations/styles.tsv`` (``STYLE_COLUMNS``, one row per
    player) and ``annotations/recording.tsv`` (``RECORDING_COLUMNS``, one row per player).

    Args:
        root: destination folder; replaced if it exists.
        spec: sizes and seed.
        split: the ``split`` config (``seed``, ``val_fraction``, ``test_fraction``) that
            decides which videos are held out, and so which take the held-out styles.
        workers: processes rendering videos in parallel.
        progress: optional callable ``(done, total, rel_path)`` called after each video.

    Returns:
        ``root`` as a Path.
    """
    root = Path(root)
    videos = plan_demo(spec, split)
    recordings = []
    with atomic_dir(root) as tmp:
        args = [(str(tmp), video, spec) for video in videos]
        if workers > 1:
            with concurrent.futures.ProcessPoolExecutor(workers) as pool:
                for done, (video, rows) in enumerate(zip(videos, pool.map(_render_video, args)), 1):
                    recordings += rows
                    if progress:
                        progress(done, len(videos), video.rel)
        else:
            for done, a in enumerate(args, 1):
                recordings += _render_video(a)
                if progress:
                    progress(done, len(videos), a[1].rel)
        splits = pd.DataFrame({"video_id": [v.video_id for v in videos], "split": [v.split for v in videos]})
        splits.to_csv(tmp / "splits.tsv", sep="\t", index=False, lineterminator="\n")
        (tmp / "annotations").mkdir(exist_ok=True)
        _style_table(videos).to_csv(tmp / "annotations" / "styles.tsv", sep="\t", index=False, lineterminator="\n")
        pd.DataFrame(recordings, columns=RECORDING_COLUMNS).to_csv(
            tmp / "annotations" / "recording.tsv", sep="\t", index=False, lineterminator="\n"
        )
    return root


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="destination folder")
    for field in dataclasses.fields(DemoSpec):
        if field.name != "instruments":
            parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default)
    parser.add_argument("--instruments", nargs="+", default=list(VOICES))
    parser.add_argument("--split-seed", type=int, default=DEFAULT_SPLIT["seed"])
    parser.add_argument("--val-fraction", type=float, default=DEFAULT_SPLIT["val_fraction"])
    parser.add_argument("--test-fraction", type=float, default=DEFAULT_SPLIT["test_fraction"])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = vars(parser.parse_args(argv))
    root, workers = args.pop("root"), args.pop("workers")
    split = {"seed": args.pop("split_seed"), "val_fraction": args.pop("val_fraction"),
             "test_fraction": args.pop("test_fraction")}
    spec = DemoSpec(**{**args, "instruments": tuple(args["instruments"])})
    generate_demo_dataset(
        root, spec, split=split, workers=workers,
        progress=lambda d, n, rel: print(f"[{d}/{n}] {rel}", file=sys.stderr),
    )


if __name__ == "__main__":
    main()
