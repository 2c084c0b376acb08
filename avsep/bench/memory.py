"""Peak memory of extraction and the bases stage on a long video.

``make bench`` runs ``python -m avsep.bench.memory``: ffmpeg writes a video of ``--minutes``
(30 by default) with a changing two-tone-and-noise soundtrack, then its audio is extracted,
its frames extracted (streamed, at the default config's rate and size; budget 1 GiB) and
its bases computed (budget 2 GiB), each in a fresh process that reports its own peak resident memory,
with the default config's STFT and NMF settings. The figures go to
``benchmarks/long_video_memory.json``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def _defaults() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def make_long_video(path: Path, minutes: float) -> Path:
    """A small-picture video whose sound changes every few seconds (tones over pink noise)."""
    from avsep.media import ffmpeg_exe

    seconds = minutes * 60
    # Commas inside a filter argument are escaped for the filter-graph parser.
    tones = r"0.2*sin(2*PI*(220+110*mod(floor(t/3)\,7))*t)+0.1*sin(2*PI*(660+55*mod(floor(t/5)\,5))*t)"
    subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"color=c=gray:size=64x48:rate=1:duration={seconds}",
         "-f", "lavfi", "-i", f"aevalsrc={tones}:s=44100:d={seconds}",
         "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.05:r=44100:d={seconds}",
         "-filter_complex", "[1:a][2:a]amix=inputs=2:normalize=0,pan=stereo|c0=c0|c1=c0[a]",
         "-map", "0:v", "-map", "[a]", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
         str(path)],
        check=True,
    )
    return path


def _child(step: str, video: Path, wav: Path, out: Path, threads: int) -> None:
    """Run one step and print its seconds and peak RSS (MiB) as JSON."""
    cfg = _defaults()
    start = time.perf_counter()
    if step == "extract_audio":
        from avsep.media import extract_audio

        n = extract_audio(video, wav, sample_rate=cfg["audio"]["sample_rate"])
        extra = {"samples": n}
    elif step == "extract_frames":
        from avsep.files import write_frame_stream
        from avsep.media import iter_frames

        f = cfg["frames"]
        frames = out.with_name("frames.h5")
        n = write_frame_stream(frames, iter_frames(video, fps=f["fps"], width=f["width"], height=f["height"]),
                               fps=f["fps"])
        extra = {"frames": n, "size": f"{f['width']}x{f['height']}", "fps": f["fps"],
                 "raw_mb": round(n * f["width"] * f["height"] * 3 / 2**20, 1)}
    else:
        import torch

        from avsep.bases import NMFConfig, bases_of_file
        from avsep.inputs import stft_params
        from avsep.transforms import STFTConfig

        torch.set_num_threads(threads)
        stft = STFTConfig(**stft_params(cfg))
        bases = bases_of_file(wav, out, stft, NMFConfig(**cfg["nmf"]))
        extra = {"chunks": int(len(bases.active)), "file_mb": round(out.stat().st_size / 2**20, 1)}
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # ffmpeg
    print(json.dumps({"step": step, "seconds": round(time.perf_counter() - start, 1),
                      "peak_rss_mib": round(max(self_kb, child_kb) / 1024, 1), **extra}))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "long_video_memory.json"))
    parser.add_argument("--child", nargs=4, metavar=("STEP", "VIDEO", "WAV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        step, video, wav, out = args.child
        _child(step, Path(video), Path(wav), Path(out), args.threads)
        return
    with tempfile.TemporaryDirectory(prefix="avsep-memory-") as tmp:
        tmp = Path(tmp)
        print(f"writing a {args.minutes:g}-minute video ...", flush=True)
        video = make_long_video(tmp / "long.mp4", args.minutes)
        from avsep.bench.workflow import machine

        results = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "minutes": args.minutes,
                   "threads": args.threads, "config": "config/config.yaml"}
        for step in ("extract_audio", "extract_frames", "video_bases"):
            print(f"{step} ...", flush=True)
            proc = subprocess.run(
                [sys.executable, "-m", "avsep.bench.memory", "--threads", str(args.threads), "--child", step,
                 str(video), str(tmp / "long.wav"), str(tmp / "long.h5")],
                capture_output=True, text=True, check=True,
            )
            results[step] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  {results[step]}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    for step, budget in (("extract_frames", 1024), ("video_bases", 2048)):
        peak = results[step]["peak_rss_mib"]
        verdict = "under" if peak < budget else "OVER"
        print(f"{step} on {args.minutes:g} min: peak {peak} MiB, {verdict} its {budget} MiB budget")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
