"""Benchmark: the deep separator's separation speed on a 60 s two-source mixture, in
multiples of real time (the target is 20x on 2 cores), at the default network and at the
published U-Net for comparison. Weights are random: speed does not depend on them."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from avsep.deep.model import DeepConfig, build_separator
from avsep.deep.separate import separate_deep
from avsep.deep.spectral import DeepAudio
from avsep.transforms import STFTConfig

TARGET = 20.0


def run(cfg: DeepConfig, audio: DeepAudio, *, seconds: float = 60.0, sample_rate: int = 22050,
        threads: int = 2, n_labels: int = 8) -> dict:
    torch.set_num_threads(threads)
    model = build_separator(cfg, audio, n_labels).eval()
    rng = np.random.default_rng(0)
    mixture = (0.1 * rng.standard_normal(int(seconds * sample_rate))).astype(np.float32)
    native = STFTConfig(sample_rate, 2048, 512)
    visuals = [np.eye(n_labels, dtype=np.float32)[k] for k in range(2)] if cfg.visual == "vision" else None
    separate_deep(model, mixture[: sample_rate * 4], sample_rate, native, visuals)  # warm-up
    start = time.perf_counter()
    separate_deep(model, mixture, sample_rate, native, visuals)
    elapsed = time.perf_counter() - start
    return {"network": cfg.network, "depth": cfg.depth, "channels": cfg.channels, "seconds": elapsed,
            "x_real_time": seconds / elapsed}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    print(f"deep separation of a {args.seconds:.0f} s two-source mixture, {args.threads} threads, CPU")
    for cfg, audio in ((DeepConfig(), DeepAudio()),
                       (DeepConfig(network="unet", depth=7, channels=64, condition="bottleneck"),
                        DeepAudio(clip_frames=256))):
        row = run(cfg, audio, seconds=args.seconds, threads=args.threads)
        verdict = "within" if row["x_real_time"] >= TARGET else "BELOW"
        print(f"  {row['network']} (depth {row['depth']}, {row['channels']} channels): {row['seconds']:.2f} s, "
              f"{row['x_real_time']:.1f}x real time ({verdict} the {TARGET:.0f}x target)")


if __name__ == "__main__":
    main()
