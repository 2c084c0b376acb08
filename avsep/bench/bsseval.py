"""Benchmark: BSS Eval v3 (SDR, SIR, SAR) of one testset25-sized mixture, by three codes.

The workload of one ``evaluate_mixture`` job at the scale benchmark's size: two sources of
60 s at 44.1 kHz, and the estimates of several methods (the mixture baseline and the
separators), each scored against its reference with 512-tap filters and no permutation.

- ``mir_eval``: ``mir_eval.separation.bss_eval_sources``, the reference the papers report;
- ``shared``: :class:`avsep.bsseval.ReferenceProjector` (the ``shared`` backend), the
  references' spectra and Gram factorisation computed once for all methods;
- ``fast_bss_eval``: the ``fast-bss-eval`` package (Scheibler 2022) on torch tensors, exact
  solve and, as a second row, its conjugate-gradient approximation (10 iterations). It is
  not a dependency of avsep; its rows are skipped, with the command that installs it, when
  it is not there, and a code that fails is recorded with its error.

Each row gives seconds for all methods and the largest difference from mir_eval in dB (also
in ``benchmarks/bsseval.json``). The mixture baseline's SAR is left out of the differences:
the mixture is a perfect sum of the references, its artefact is rounding noise, and its SAR
(about 225 dB) differs between any two codes.
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


def _workload(seconds: float, sr: int, n_methods: int, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Two harmonic sources with vibrato and note changes, and ``n_methods`` estimate sets:
    the mixture itself, then estimates with falling leakage, filtering and noise."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    refs = []
    for _ in range(2):
        notes = rng.uniform(110, 880, int(seconds) + 1)
        f0 = notes[t.astype(int)] * (1 + 0.005 * np.sin(2 * np.pi * 5 * t))
        phase = 2 * np.pi * np.cumsum(f0) / sr
        env = 0.5 + 0.5 * np.abs(np.sin(np.pi * t * rng.uniform(0.5, 2)))
        refs.append(env * sum(np.sin(k * phase) / k for k in range(1, 8)))
    refs = np.stack(refs)
    mix = refs.sum(0)
    estimates = [np.stack([mix, mix])]
    for m in range(1, n_methods):
        leak, noise = 0.5 / (m + 1), 0.05 / m
        kernel = rng.normal(0, 0.1, 32)
        kernel[0] = 1.0
        est = []
        for j in range(2):
            e = refs[j] + leak * refs[1 - j] + noise * rng.standard_normal(n)
            est.append(np.convolve(e, kernel)[:n])
        estimates.append(np.stack(est))
    return refs, estimates


def _mir_eval(refs, estimates):
    import mir_eval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return [np.stack(mir_eval.separation.bss_eval_sources(refs, e, compute_permutation=False)[:3])
                for e in estimates]


def _shared(refs, estimates):
    from avsep.bsseval import ReferenceProjector

    projector = ReferenceProjector(refs)
    return [np.stack(projector.metrics(e)) for e in estimates]


def _fast(cg_iter):
    def run(refs, estimates):
        import fast_bss_eval

        # Its numpy backend fails on numpy 2 (np.linalg.solve's new broadcasting rule).
        return [np.stack([t.numpy() for t in fast_bss_eval.bss_eval_sources(
            torch.from_numpy(refs), torch.from_numpy(e), compute_permutation=False, use_cg_iter=cg_iter)[:3]])
            for e in estimates]
    return run


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="mixture length (testset25: 60 s)")
    ap.add_argument("--sample-rate", type=int, default=44100)
    ap.add_argument("--methods", type=int, default=6, help="estimate sets, the mixture baseline included")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "bsseval.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    refs, estimates = _workload(args.seconds, args.sample_rate, args.methods)
    print(f"BSS Eval v3 of {args.methods} estimate sets x 2 sources, {args.seconds:g} s at "
          f"{args.sample_rate} Hz, 512-tap filters, {args.threads} threads")
    codes = {"mir_eval": _mir_eval, "shared": _shared, "fast_bss_eval": _fast(None),
             "fast_bss_eval_cg10": _fast(10)}
    rows, reference = {}, None
    for name, run in codes.items():
        try:
            start = time.perf_counter()
            scores = run(refs, estimates)
            seconds = time.perf_counter() - start
        except ImportError as err:
            print(f"  {name:20s} skipped ({err}; pip install fast-bss-eval==0.1.4 to measure it)")
            continue
        except Exception as err:  # a library that breaks on this stack is a result too
            rows[name] = {"failed": f"{type(err).__name__}: {err}"}
            print(f"  {name:20s} failed: {rows[name]['failed'][:160]}")
            continue
        scores = np.stack(scores)  # (methods, 3, sources)
        if reference is None:
            reference = scores
        diff = np.abs(scores - reference)
        diff[0, 2] = 0.0  # the mixture baseline's SAR: rounding noise (see the docstring)
        rows[name] = {"seconds": seconds, "per_method_s": seconds / args.methods,
                      "max_abs_diff_db": {m: float(diff[:, i].max()) for i, m in enumerate(("sdr", "sir", "sar"))}}
        d = rows[name]["max_abs_diff_db"]
        print(f"  {name:20s} {seconds:7.2f} s  ({seconds / args.methods:5.2f} s per method)   "
              f"max |diff| from mir_eval: SDR {d['sdr']:.1e}  SIR {d['sir']:.1e}  SAR {d['sar']:.1e} dB")
    from avsep.bench.workflow import machine

    record = {"date": date.today().isoformat(), "machine": machine(), "seconds": args.seconds, "sample_rate": args.sample_rate,
              "methods": args.methods, "threads": args.threads, "codes": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {args.out}")
    return record


if __name__ == "__main__":
    main()
