"""Which track is a source's estimate: each source of a mixture matched to at most one of a
method's tracks, one to one.

A source whose instrument some track is labelled with takes that track; the sources left
over take the tracks left over in screen order (left to right); a source left without a
track (the method separated nothing, or fewer tracks than sources) is scored with the
mixture as its estimate, which is what doing nothing gives (SDRi 0). Every row of the
scores says how it was matched. No track serves two sources, so a wrong label costs the
source it displaced as well.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["MATCHES", "match_tracks", "method_estimates"]

#: How a source found its track: by its label, by its place on screen, or not at all.
MATCHES = ("label", "position", "none")
_SCREEN_ORDER = {"left": 0, "center": 1, "right": 2}


def _screen_key(position: str | None, name: str) -> tuple:
    return (_SCREEN_ORDER.get(position or "", len(_SCREEN_ORDER)), name)


def match_tracks(sources: Mapping[str, str | None], tracks: Sequence[tuple[str, str | None]]) -> dict:
    """Pair each source with at most one track, each track with at most one source.

    Args:
        sources: true instrument -> its position on screen ("left", "right", or None).
        tracks: a method's tracks as ``(label, position)``, in the method's order; a label
            may appear twice (a vision stage that named one instrument on both sides).

    Returns:
        source -> ``(index into tracks or None, how)``, ``how`` one of :data:`MATCHES`:
        first every source takes a track carrying its label (the one on its own side when
        there are two); then the sources left take the tracks left, both in screen order
        (left to right, unknown positions last); a source for which no track is left gets
        ``(None, "none")``.
    """
    free = list(range(len(tracks)))
    out = {}
    for source in sorted(sources, key=lambda s: _screen_key(sources[s], s)):
        same = [k for k in free if tracks[k][0] == source]
        if same:
            k = min(same, key=lambda k: (tracks[k][1] != sources[source], k))
            out[source] = (k, "label")
            free.remove(k)
    left = sorted((s for s in sources if s not in out), key=lambda s: _screen_key(sources[s], s))
    free.sort(key=lambda k: _screen_key(tracks[k][1], tracks[k][0]))
    for source in left:
        out[source] = (free.pop(0), "position") if free else (None, "none")
    return {s: out[s] for s in sources}


def method_estimates(mixture: np.ndarray, sources: Mapping[str, str | None],
                     tracks: Sequence[tuple[str, str | None, np.ndarray]]) -> tuple[dict, dict]:
    """Each source's estimate under :func:`match_tracks`: ``(estimates, matched)``, where
    ``estimates`` maps source -> signal (the mixture where no track is left) and ``matched``
    maps source -> ``(track label or "", how)``."""
    pairs = match_tracks(sources, [(label, pos) for label, pos, _ in tracks])
    estimates = {s: mixture if k is None else tracks[k][2] for s, (k, _) in pairs.items()}
    matched = {s: ("" if k is None else tracks[k][0], how) for s, (k, how) in pairs.items()}
    return estimates, matched
