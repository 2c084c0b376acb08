"""Benchmarks, each run by hand (``make bench``, ``make bench-scale``) and none by the workflow:

- :mod:`avsep.bench.workflow` (``python -m avsep.bench``): the demo workflow from scratch,
  with the wall time and peak memory of every rule from Snakemake's benchmark files.
- :mod:`avsep.bench.nmf` (``python -m avsep.bench.nmf``): the batched KL NMF solver against
  scikit-learn's.
- :mod:`avsep.bench.vision` (``python -m avsep.bench.vision``): inference speed of the
  frame classifiers and the detector.
- :mod:`avsep.bench.memory` (``python -m avsep.bench.memory``): peak memory of extraction
  and the bases stage on a long video.
- :mod:`avsep.bench.scale` (``python -m avsep.bench.scale``): a workload the size of the
  seed's testset25, stage by stage, with the costs per hour and the MUSIC projection.
- :mod:`avsep.bench.readme` (``python -m avsep.bench.readme``): the README's speed figures,
  written from the records the others leave in ``benchmarks/``.
"""
