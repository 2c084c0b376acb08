"""The fetch stage's own speed, on local files (no video site is reachable from a test machine).

``python -m avsep.bench.fetch`` writes ``--videos`` videos of ``--seconds`` each (640 x 360,
H.264 and AAC, the size of a 360p download), lists them in a MUSIC-style JSON with
``--missing`` ids that do not exist, and runs ``snakemake fetch`` on them through yt-dlp's
``file://`` reader twice: the first call fetches (whole files, then again cutting a 10 s clip
from each), the second must fetch nothing. What it measures is the stage's cost per video
(start-up, yt-dlp, the check with ffmpeg, the atomic rename), not a network: a real fetch
is bound by the site. The figures go to ``benchmarks/fetch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def make_videos(folder: Path, n: int, seconds: float) -> list[str]:
    from avsep.media import ffmpeg_exe

    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"vid{i:03d}" for i in range(n)]
    for i, vid in enumerate(ids):
        subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}",
             "-f", "lavfi", "-i", f"sine=frequency={220 + 20 * i}:sample_rate=44100:duration={seconds}",
             "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
             str(folder / f"{vid}.mp4")],
            check=True,
        )
    return ids


def run_fetch(work: Path, config: Path, cores: int) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", str(cores), "fetch",
           "--configfile", str(REPO / "config" / "config.yaml"), str(config)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env={**os.environ, "SLURM_CONF": "/dev/null"})
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return time.perf_counter() - start, proc.stdout + proc.stderr


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avsep.bench.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--missing", type=int, default=3)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/fetch.json")
    args = parser.parse_args(argv)
    results = {"videos": args.videos, "seconds": args.seconds, "missing": args.missing, "cores": args.cores}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ids = make_videos(tmp / "site", args.videos, args.seconds)
        size = sum(p.stat().st_size for p in (tmp / "site").glob("*.mp4"))
        listed = ids + [f"gone{i}" for i in range(args.missing)]
        half = len(listed) // 2
        (tmp / "list.json").write_text(json.dumps({"videos": {"violin": listed[:half], "cello": listed[half:]}}))
        for name, clip in (("whole", 0.0), ("clip10", 10.0)):
            work = tmp / name
            work.mkdir()
            cfg = work / "fetch.json"
            cfg.write_text(json.dumps({"dataset": {"root": str(work / "data"), "fetch": {
                "lists": [str(tmp / "list.json")], "url": f"file://{tmp / 'site'}/{{id}}.mp4",
                "clip": {"start": 0.0, "seconds": clip}, "retries": 0}}}))
            first, log = run_fetch(work, cfg, args.cores)
            again, log2 = run_fetch(work, cfg, args.cores)
            assert "Nothing to be done" in log2, "the second fetch did something"
            fetched = sum(p.stat().st_size for p in (work / "data").rglob("*.mp4"))
            results[name] = {"wall_s": round(first, 2), "per_video_s": round(first / len(listed), 3),
                             "MB_per_s": round(fetched / 1e6 / first, 2), "MB_fetched": round(fetched / 1e6, 1),
                             "second_call_s": round(again, 2)}
            print(f"{name}: {len(listed)} listed ({args.missing} missing), {fetched / 1e6:.1f} MB in {first:.1f} s "
                  f"wall ({first / len(listed):.2f} s per video, {fetched / 1e6 / first:.1f} MB/s); "
                  f"second call {again:.1f} s, fetched nothing", flush=True)
        results["source_MB"] = round(size / 1e6, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
