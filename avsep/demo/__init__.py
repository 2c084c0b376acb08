"""The embedded demo dataset: synthetic MP4 videos in the MUSIC layout, generated offline,
built so that held-out videos are harder than training ones (new looks, rooms, timbres).

- :mod:`avsep.demo.plan`: the dataset's sizes, its videos and splits, and every player's
  style (held-out looks for the validation and test videos).
- :mod:`avsep.demo.pictures`: the drawn players and their instruments.
- :mod:`avsep.demo.scene`: the rooms, the drifting lighting and the players' motion.
- :mod:`avsep.demo.sound`: the melodies, rendered from a General MIDI soundfont, and each
  video's microphone and room.
- :mod:`avsep.demo.generate`: rendering and encoding the videos and writing the dataset
  with its splits and annotations (``python -m avsep.demo <root>``).
"""
