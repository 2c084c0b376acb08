"""Benchmark: batched KL NMF (avsep.nmf) against scikit-learn's ``NMF(solver='mu')``.

The seed's chunk shape: F=2049 bins (n_fft 4096), N=108 frames (5 s at 44.1 kHz, hop 2048),
M=25 bases, 100 iterations, on 2 threads. Both start from the same factors and run in
float32; the table gives chunks per second and the final KL objective of each
(also in ``benchmarks/nmf.json``).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]


def _spectrogram_chunks(n_chunks: int, n_bins: int, n_frames: int, seed: int = 0) -> np.ndarray:
    """Magnitude-like chunks: a few harmonic spectra switched on and off over time, plus noise."""
    rng = np.random.default_rng(seed)
    freqs = np.arange(n_bins)
    chunks = np.empty((n_chunks, n_bins, n_frames), np.float32)
    for c in range(n_chunks):
        spectra = []
        for _ in range(12):
            f0 = rng.uniform(8, 120)
            harmonics = np.arange(1, 20) * f0
            amps = rng.uniform(0.1, 1.0, harmonics.size) / np.arange(1, 20)
            spectra.append((amps[:, None] * np.exp(-0.5 * ((freqs[None] - harmonics[:, None]) / 2.0) ** 2)).sum(0))
        acts = rng.exponential(1.0, (12, n_frames)) * (rng.random((12, n_frames)) < 0.3)
        chunks[c] = np.stack(spectra, 1) @ acts + rng.exponential(1e-3, (n_bins, n_frames))
    return chunks


def _kl64(V, W, H) -> float:
    """KL divergence of a factorisation, evaluated in float64 so that both solvers' results
    are scored by the same arithmetic (float32 sums differ in the 5th digit by order alone)."""
    V, WH = V.astype(np.float64), np.maximum(W.astype(np.float64) @ H.astype(np.float64), 1e-12)
    return float(np.sum(np.where(V > 0, V * np.log(np.maximum(V, 1e-12) / WH), 0.0) - V + WH))


def run(n_chunks=8, n_bins=2049, n_frames=108, n_components=25, n_iter=100, threads=2, repeats=3) -> dict:
    """Best of ``repeats`` timings of each solver on the same chunks and start."""
    from sklearn.decomposition import NMF
    from threadpoolctl import threadpool_limits

    from avsep.nmf import init_factors, nmf

    torch.set_num_threads(threads)
    V = _spectrogram_chunks(n_chunks, n_bins, n_frames)
    Vt = torch.from_numpy(V)
    W0, H0 = init_factors(Vt, n_components, seed=0)
    nmf(Vt[:1], W=W0[:1], H=H0[:1], n_iter=2)  # warm-up
    t_ours = t_theirs = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        ours = nmf(Vt, W=W0, H=H0, n_iter=n_iter, tol=0.0, loss="kl")
        t_ours = min(t_ours, time.perf_counter() - start)
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            obj_theirs = []
            start = time.perf_counter()
            for c in range(n_chunks):
                model = NMF(n_components, solver="mu", beta_loss="kullback-leibler", init="custom",
                            max_iter=n_iter, tol=0)
                W = model.fit_transform(V[c], W=W0[c].numpy().copy(), H=H0[c].numpy().copy())
                obj_theirs.append(_kl64(V[c], W, model.components_))
            t_theirs = min(t_theirs, time.perf_counter() - start)
    return {
        "avsep_chunks_per_s": n_chunks / t_ours,
        "sklearn_chunks_per_s": n_chunks / t_theirs,
        "speedup": t_theirs / t_ours,
        "avsep_objective": float(sum(_kl64(V[c], ours.W[c].numpy(), ours.H[c].numpy()) for c in range(n_chunks))),
        "sklearn_objective": float(np.sum(obj_theirs)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "nmf.json")
    args = parser.parse_args(argv)
    r = run(n_chunks=args.chunks, threads=args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"date": date.today().isoformat(), "chunks": args.chunks,
                                    "threads": args.threads, **r}, indent=2) + "\n")
    print(f"NMF, KL, F=2049 N=108 M=25, 100 iterations, {args.chunks} chunks, {args.threads} threads")
    print(f"  avsep.nmf (batched torch): {r['avsep_chunks_per_s']:7.2f} chunks/s  objective {r['avsep_objective']:.6g}")
    print(f"  sklearn NMF(solver='mu'):  {r['sklearn_chunks_per_s']:7.2f} chunks/s  objective {r['sklearn_objective']:.6g}")
    rel = (r["avsep_objective"] - r["sklearn_objective"]) / r["sklearn_objective"]
    print(f"  speed-up: {r['speedup']:.2f}x; objective difference {rel:+.2e} relative (best of 3 runs each)")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
