"""Stage 7: the separated tracks scored against the ground-truth stems (BSS Eval), and the
tables and prose that sum the scores up.

- :mod:`avsep.evaluation.matching`: which track is each source's estimate, one to one.
- :mod:`avsep.evaluation.scores`: SDR, SIR, SAR and SDRi of every method on one mixture.
- :mod:`avsep.evaluation.item`: the scoring of one test mixture or duet from the workflow's
  files: matching, failed methods, vision's placement, the audio classifiers' labels.
- :mod:`avsep.evaluation.summary`: per-method and per-instrument tables over mixtures, with
  bootstrap intervals.
- :mod:`avsep.evaluation.markdown`: the evaluation summary as Markdown.
"""
