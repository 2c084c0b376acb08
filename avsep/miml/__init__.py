"""Stage 4: the deep multi-instance multi-label (MIML) network of Gao, Feris & Grauman,
"Learning to Separate Object Sounds by Watching Unlabeled Video" (ECCV 2018, Sec. 3.2).

- :mod:`avsep.miml.model`: the network and its configuration, saved and loaded.
- :mod:`avsep.miml.bags`: bags of max-normalized NMF bases with their weak labels, built
  from the videos' bases and written to and read from HDF5.
- :mod:`avsep.miml.train`: the seeded, resumable training loop and its learning-rate
  schedules.
- :mod:`avsep.miml.metrics`: bag accuracy and mean average precision.
- :mod:`avsep.miml.predict`: a trained network's bag scores and relation maps, and the
  instrument it names for a track.
"""
