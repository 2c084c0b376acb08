"""Stage 7, evaluation: the independent audio probe, an instrument classifier trained on solo
clips that names the instrument of every separated track: the downstream protocol of
AudioSep's evaluation, the course report's downstream probe.

The MIML network (:mod:`avsep.miml`) both picks the key bases of ``miml_nmf`` and, through
:func:`avsep.miml.predict.predict_instrument`, can name the instrument of a separated track: a
judge trained with the method it judges. The probe shares no parameters with any separation
method: frozen audio features, standardised with the training clips' statistics, then a
linear classifier or a 3-layer MLP.

- :mod:`avsep.probe.features`: tracks cut into clips, and the clips' features: log-mel
  statistics, or the MIML network's per-basis embedding pooled over a clip's NMF bases.
- :mod:`avsep.probe.model`: the probe and its classifiers, saved and loaded.
- :mod:`avsep.probe.train`: training with early stopping on the validation clips, and the
  probes of the workflow on the solo videos' clips.
- :mod:`avsep.probe.predict`: the instrument a probe names for a track, and every probe's
  label for every audible clip of the tracks of the probe report.
- :mod:`avsep.probe.scores`: accuracies and confusions, per clip and per input.
"""
