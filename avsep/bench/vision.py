"""Benchmark: vision inference speed per backbone, in frames per second.

``efficientnet_lite0`` is the default classifier (pretrained features and a linear head);
the torchvision backbones are timed as :func:`avsep.vision.classifier.build_classifier` builds them.

Each half-frame the ``halves`` method classifies counts as one image; a frame costs two
(four when the recursive split runs). The detector sees whole side-by-side mixture frames
(224 x 448). Weights are random: speed does not depend on them (the detector's does a
little, through the number of boxes, so its score threshold is the workflow's 0.05).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from avsep.vision.backbones import FeatureClassifier
from avsep.vision.classifier import BACKBONES, build_classifier, classify_images


def run(backbones=("efficientnet_lite0", *BACKBONES), input_size: int = 96, n_images: int = 64,
        threads: int = 2) -> list[dict]:
    torch.set_num_threads(threads)
    images = list(np.random.default_rng(0).integers(0, 255, (n_images, 224, 112, 3), dtype=np.uint8))
    rows = []
    for backbone in backbones:
        model = (FeatureClassifier(backbone, 8) if backbone == "efficientnet_lite0"
                 else build_classifier(backbone, 8)).eval()
        classify_images(model, images[:4], input_size=input_size)  # warm-up
        start = time.perf_counter()
        classify_images(model, images, input_size=input_size)
        seconds = time.perf_counter() - start
        rows.append({"backbone": backbone, "input_size": input_size, "images_per_s": n_images / seconds})
    return rows


def run_detector(input_size: int = 128, n_frames: int = 16, threads: int = 2,
                 backbone: str = "mobilenet_v3_large_fpn") -> dict:
    from avsep.vision.detector import build_detector, detect

    torch.set_num_threads(threads)
    frames = np.random.default_rng(0).integers(0, 255, (n_frames, 224, 448, 3), dtype=np.uint8)
    model = build_detector(8, score_threshold=0.05, input_size=input_size, backbone=backbone)
    detect(model, frames[:2])  # warm-up
    start = time.perf_counter()
    detect(model, frames)
    return {"input_size": input_size, "frames_per_s": n_frames / (time.perf_counter() - start)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-size", type=int, nargs="+", default=[96, 160, 224])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"frame classifier inference, {args.threads} threads, CPU")
    for size in args.input_size:
        for row in run(input_size=size, threads=args.threads):
            print(f"  {row['backbone']:<20} {size:>4} px: {row['images_per_s']:7.1f} half-frames/s")
    print("detector, 224 x 448 mixture frames")
    for backbone in ("mobilenet_v3_large_fpn", "efficientnet_lite0"):
        for size in (128, 224):
            row = run_detector(size, threads=args.threads, backbone=backbone)
            print(f"  {backbone:<22} shorter side {size:>4} px: {row['frames_per_s']:7.1f} frames/s")


if __name__ == "__main__":
    main()
