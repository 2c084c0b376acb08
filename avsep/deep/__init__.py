"""The deep audio-visual separator (method ``deep``): a mask network on the log-frequency
magnitude spectrogram, conditioned on what is seen of one source, trained by
mix-and-separate (Zhao et al., *The Sound of Pixels*, ECCV 2018; Gao & Grauman,
*Co-Separating Sounds of Visual Objects*, ICCV 2019).

- :mod:`avsep.deep.spectral`: the model's own audio settings and the log-frequency warp.
- :mod:`avsep.deep.model`: the networks (a dilated temporal network, the U-Net), the
  visual encoders, the configuration, checkpoints.
- :mod:`avsep.deep.data`: the training clips (audio at the model's rate, what is seen),
  mix-and-separate batches and the fixed validation pairs.
- :mod:`avsep.deep.train`: training, seeded and resumable.
- :mod:`avsep.deep.separate`: masks over a whole mixture, overlap-added, applied to the
  mixture's STFT at the pipeline's rate.
"""
