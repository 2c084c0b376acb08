"""The figures and pages that the rule scripts, of every stage, add to Snakemake's report.

- :mod:`avsep.report.overview`: a look at the dataset: videos and minutes per instrument and
  split, and a contact sheet of frames.
- :mod:`avsep.report.plots`: the figures (matplotlib, drawn off-screen): the dataset's
  splits, SDR box plots, MIML training curves and relation maps, confusion matrices, and the
  run time per rule.
- :mod:`avsep.report.showcase`: one self-contained HTML page per showcased test mixture, with
  what vision saw, the spectrograms and players of the mixture, its stems and every
  method's estimates.
"""
