"""Stage 2 (method ``halves``): which instruments are on screen, and on which side, as the
vision records (``results/vision/<item>.json``) hold them.

An image classifier (:mod:`avsep.vision.classifier`) looks at the left and right halves of
each sampled frame, as in the seed. When both halves give the same instrument, the half
that looks less like it is split again and its quarters are classified; if they still
agree, that half takes its second-best label (:func:`label_halves`). Per-video pooling then
votes over the sampled frames (:func:`pool_video_labels`).

When the evidence is weak (either side's pooled probabilities separate their best two
instruments by less than a margin), the record is flagged ``uncertain`` and names the two
instruments with the highest pooled probability over both sides (:func:`describe_halves`).
When the dataset already says which instruments play (a duet folder ``violin_cello``),
:func:`assign_known_labels` only decides which is on which side. When no folder says it,
the audio can: :func:`assign_audio_labels` takes the two instruments the MIML network hears
in the recording and lets vision place them (``separation.labels: audio+vision``).
:func:`present_instruments` is shared with the detector's records.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Callable, Sequence

import numpy as np

from avsep.errors import InputError

#: The ``separation.labels`` choices whose instruments come through the vision records.
VISION_LABELS = ("vision", "folder+vision", "audio+vision", "folder+audio+vision")
#: Those that name a recording's instruments from what the MIML network hears in it.
AUDIO_LABELS = ("audio+vision", "folder+audio+vision")
#: Those that name a video's instruments from its folder, where the folder names two.
FOLDER_LABELS = ("folder+vision", "folder+audio+vision")

__all__ = [
    "VISION_LABELS",
    "AUDIO_LABELS",
    "FOLDER_LABELS",
    "FrameLabels",
    "label_halves",
    "pool_video_labels",
    "present_instruments",
    "side_probabilities",
    "best_distinct_pair",
    "orient_pair",
    "describe_halves",
    "assign_known_labels",
    "assign_audio_labels",
    "visible_from",
]


@dataclasses.dataclass(frozen=True)
class FrameLabels:
    """What one frame shows: the label and its probability on each side."""

    left: str
    right: str
    left_score: float
    right_score: float
    split: bool  # whether the recursive split decided
    left_probs: tuple[float, ...] | None = None  # the half's class probabilities
    right_probs: tuple[float, ...] | None = None


def _halves(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = image.shape[1] // 2
    return image[:, :w], image[:, w:]


def label_halves(
    frame: np.ndarray, classify: Callable[[list[np.ndarray]], np.ndarray], label_names: Sequence[str]
) -> FrameLabels:
    """Label the left and right halves of ``frame`` ``(H, W, 3)``.

    Args:
        classify: images -> class probabilities ``(n, L)``.

    The seed's recursive split: when both halves' top labels agree, the half with the lower
    probability for that label is cut into its own left and right halves, which are
    classified; a quarter whose top label differs gives the half that label (the best such
    quarter). If both quarters agree too, the weaker half takes its second-best label.
    """
    left, right = _halves(frame)
    p = classify([left, right])
    probs = {"left_probs": tuple(float(x) for x in p[0]), "right_probs": tuple(float(x) for x in p[1])}
    top = p.argmax(axis=1)
    if top[0] != top[1]:
        return FrameLabels(label_names[top[0]], label_names[top[1]], float(p[0, top[0]]), float(p[1, top[1]]), False,
                           **probs)
    shared = int(top[0])
    weak = int(np.argmin(p[:, shared]))  # the half that looks less like the shared label
    strong = 1 - weak
    quarters = classify(list(_halves(left if weak == 0 else right)))
    q_top = quarters.argmax(axis=1)
    other = [k for k in range(2) if q_top[k] != shared]
    if other:
        k = max(other, key=lambda k: quarters[k, q_top[k]])
        label, score = int(q_top[k]), float(quarters[k, q_top[k]])
    else:
        order = np.argsort(-p[weak])
        label, score = int(order[1]), float(p[weak, order[1]])
    labels = {strong: (shared, float(p[strong, shared])), weak: (label, score)}
    return FrameLabels(label_names[labels[0][0]], label_names[labels[1][0]], labels[0][1], labels[1][1], True,
                       **probs)


def pool_video_labels(frames: Sequence[FrameLabels]) -> dict:
    """Pool per-frame labels into the video's instruments and positions.

    Each side takes its most frequent label over the frames (ties: higher mean score); the
    score is the fraction of frames agreeing times their mean probability. If both sides
    end on one instrument, the weaker side takes its next label.

    Returns:
        ``{"left": {"instrument", "score", "votes"}, "right": {...}, "frames": n}``.
    """
    if not frames:
        raise ValueError("no frame to pool")
    ranked = {}
    for side in ("left", "right"):
        labels = [getattr(f, side) for f in frames]
        scores = [getattr(f, f"{side}_score") for f in frames]
        counts = Counter(labels)
        mean = {lab: float(np.mean([s for l, s in zip(labels, scores) if l == lab])) for lab in counts}
        order = sorted(counts, key=lambda lab: (counts[lab], mean[lab]), reverse=True)
        ranked[side] = [{"instrument": lab, "score": counts[lab] / len(frames) * mean[lab], "votes": counts[lab]}
                        for lab in order]
    left, right = ranked["left"][0], ranked["right"][0]
    if left["instrument"] == right["instrument"]:
        # Two players of one instrument are not what a duet holds: the side with the weaker
        # claim takes its runner-up, when it has one.
        weak = "left" if left["score"] < right["score"] else "right"
        if len(ranked[weak]) > 1:
            ranked[weak] = ranked[weak][1:]
    return {"frames": len(frames), "left": ranked["left"][0], "right": ranked["right"][0]}


def _rounded(value):
    return round(value, 4) if isinstance(value, float) else value


def present_instruments(scored: Sequence[dict], threshold: float) -> list[str]:
    """The instruments a video shows, from ``{"instrument", "score"}`` entries: those whose
    score reaches ``threshold``, and always the surest one (a video shows something)."""
    ranked = sorted(scored, key=lambda e: e["score"], reverse=True)
    names = [e["instrument"] for e in ranked if e["score"] >= threshold] or [ranked[0]["instrument"]]
    return sorted(dict.fromkeys(names))


def side_probabilities(evidence: Sequence[FrameLabels], label_names: Sequence[str]) -> dict | None:
    """Mean class probabilities of each half over the frames, ``{"left": {name: p},
    "right": {...}}``; ``None`` when the evidence carries no probabilities."""
    if not evidence or any(e.left_probs is None or e.right_probs is None for e in evidence):
        return None
    return {side: dict(zip(label_names, np.mean([getattr(e, f"{side}_probs") for e in evidence], axis=0).tolist()))
            for side in ("left", "right")}


def _margin(probs: dict) -> float:
    top = sorted(probs.values(), reverse=True)
    return top[0] - (top[1] if len(top) > 1 else 0.0)


def best_distinct_pair(side_probs: dict) -> tuple[list[str], list[float]]:
    """The two instruments with the highest pooled probability (left plus right), placed
    on the sides that fit them best. Returns ``(instruments, scores)``, left to right; the
    scores are each instrument's mean probability on its side."""
    pooled = {k: side_probs["left"][k] + side_probs["right"][k] for k in side_probs["left"]}
    a, b = sorted(pooled, key=lambda k: (-pooled[k], k))[:2]
    return orient_pair([a, b], side_probs)


def orient_pair(pair: Sequence[str], side_probs: dict) -> tuple[list[str], list[float]]:
    """Place two known instruments left and right, whichever way the halves' probabilities
    fit better; returns ``(instruments, scores)``, left to right."""
    a, b = pair
    left, right = side_probs["left"], side_probs["right"]
    order = [a, b] if left[a] + right[b] >= left[b] + right[a] else [b, a]
    return order, [round(left[order[0]], 4), round(right[order[1]], 4)]


def describe_halves(item: str, evidence: Sequence[FrameLabels], indices: Sequence[int], timestamps: Sequence[float],
                    *, present_threshold: float = 0.5, abstain_margin: float = 0.0,
                    label_names: Sequence[str] | None = None) -> dict:
    """The vision record of one video or mixture under the halves method: the instrument
    and score on each side, the instruments present, and the per-frame evidence.

    With per-frame probabilities and ``label_names``, the record also holds each side's
    mean probabilities (``side_probs``) and the margin between its best two instruments
    (``margins``). When either margin is below ``abstain_margin``, or the vote could not
    name two different instruments, the record is ``uncertain``: its instruments are then
    the best two distinct ones by pooled probability (:func:`best_distinct_pair`).
    """
    pooled = pool_video_labels(evidence)
    sides = [pooled["left"], pooled["right"]]
    instruments = [s["instrument"] for s in sides]
    scores = [round(s["score"], 4) for s in sides]
    record = {"item": item, "method": "halves"}
    side_probs = side_probabilities(evidence, label_names) if label_names is not None else None
    uncertain, reason = False, ""
    if side_probs is not None:
        margins = [_margin(side_probs["left"]), _margin(side_probs["right"])]
        if instruments[0] == instruments[1]:
            uncertain, reason = True, "both sides voted for one instrument"
        elif min(margins) < abstain_margin:
            uncertain, reason = True, f"side margin {min(margins):.3f} below vision.abstain_margin {abstain_margin:g}"
        if uncertain:
            instruments, scores = best_distinct_pair(side_probs)
        record["side_probs"] = {side: {k: round(v, 4) for k, v in probs.items()} for side, probs in side_probs.items()}
        record["margins"] = [round(m, 4) for m in margins]
    record.update({
        "instruments": instruments,
        "positions": ["left", "right"],
        "scores": scores,
        "boxes": [None, None],
        "present": present_instruments([{"instrument": i, "score": s} for i, s in zip(instruments, scores)],
                                       present_threshold),
        "uncertain": uncertain,
        "uncertain_reason": reason,
        "frames": [
            {"index": int(i), "time": round(float(timestamps[i]), 3),
             **{k: _rounded(x) for k, x in dataclasses.asdict(e).items() if not k.endswith("_probs")}}
            for i, e in zip(indices, evidence)
        ],
    })
    return record


def assign_known_labels(record: dict, labels: Sequence[str]) -> dict:
    """The visible instruments of an item whose instruments are known (``folder+vision``):
    ``labels`` (two instruments, from the dataset's folder) placed left and right as the
    vision record's evidence fits better.

    The halves method's side probabilities decide; a record without them (the detector)
    keeps its own order when it names both instruments, and is otherwise placed by the
    instruments it did name.

    Returns:
        ``{"instruments", "positions", "scores", "labels_from", "uncertain"}``.
    """
    labels = list(labels)
    if len(labels) != 2 or labels[0] == labels[1]:
        raise InputError(f"{record.get('item')}: folder+vision needs two different known instruments, got {labels}")
    if "side_probs" in record:
        order, scores = orient_pair(labels, record["side_probs"])
    else:
        seen = dict(zip(record["instruments"], record["positions"]))
        if seen.get(labels[1]) == "left" or seen.get(labels[0]) == "right":
            labels = labels[::-1]
        order, scores = labels, [None, None]
    return {"instruments": order, "positions": ["left", "right"], "scores": scores, "labels_from": "folder+vision",
            "uncertain": False}


def assign_audio_labels(record: dict, tags: dict) -> dict:
    """The visible instruments of an item under ``separation.labels: audio+vision``: the
    two instruments the MIML network hears best in the whole recording
    (:func:`avsep.miml.predict.audio_tags`), placed left and right by vision, as
    :func:`assign_known_labels` places a duet folder's.

    Audio names the set and vision only says which is where, so a look vision has never
    seen costs a side, not an instrument. The result is flagged ``uncertain`` where audio and
    vision name different pairs (the reason names both), and where audio hears nothing (every
    chunk silent, or fewer than two instruments ranked): vision's own instruments are then
    kept.

    Returns:
        ``{"instruments", "positions", "scores", "labels_from", "uncertain",
        "uncertain_reason", "audio_pair", "vision_pair", "agrees_with_vision"}``.
    """
    vision_pair = list(record["instruments"])
    ranked = list(tags.get("ranked", []))
    if "side_probs" in record:  # only instruments vision can place (both come from the run's instruments)
        ranked = [name for name in ranked if name in record["side_probs"]["left"]]
    if tags.get("silent") or len(ranked) < 2:
        return {"instruments": vision_pair, "positions": list(record["positions"]),
                "scores": list(record.get("scores", [None] * len(vision_pair))), "labels_from": "audio+vision",
                "uncertain": True, "uncertain_reason": "audio hears fewer than two instruments; vision's kept",
                "audio_pair": [], "vision_pair": vision_pair, "agrees_with_vision": True}
    placed = assign_known_labels(record, ranked[:2])
    agrees = set(ranked[:2]) == set(vision_pair)
    reason = "" if agrees else f"audio hears {' and '.join(ranked[:2])}; vision saw {' and '.join(vision_pair)}"
    return {**placed, "labels_from": "audio+vision", "uncertain": not agrees, "uncertain_reason": reason,
            "audio_pair": ranked[:2], "vision_pair": vision_pair, "agrees_with_vision": agrees}


def visible_from(record: dict, labels: str, known_labels: Sequence[str] = (), tags: dict | None = None,
                 ) -> tuple[dict, str]:
    """The visible instruments of an item under a ``separation.labels`` choice that goes
    through vision (:data:`VISION_LABELS`), and where they came from:

    - a video whose folder names two instruments, under :data:`FOLDER_LABELS`: the folder's,
      placed by vision (``folder+vision``);
    - else, under :data:`AUDIO_LABELS`: the two the audio ranks first (``tags``), placed by
      vision (``audio+vision``);
    - else vision's own record (``vision``).
    """
    if labels not in VISION_LABELS:
        raise InputError(f"separation.labels {labels!r} does not go through vision; expected one of "
                         f"{', '.join(VISION_LABELS)}")
    if labels in FOLDER_LABELS and len(set(known_labels)) == 2:
        return assign_known_labels(record, known_labels), "folder+vision"
    if labels in AUDIO_LABELS:
        if tags is None:
            raise InputError(f"{record.get('item')}: separation.labels {labels} needs the item's audio tags")
        return assign_audio_labels(record, tags), "audio+vision"
    return record, "vision"
