"""Scoring the vision stage against the truth: sides from boxes, visual and location
accuracy, intervals."""

import numpy as np
import pandas as pd
import pytest

from avsep.stats import bootstrap_interval
from avsep.vision.scores import duet_true_sides, score_vision, side_confusion, summarize_vision


def test_duet_sides_come_from_the_mean_box_centres():
    boxes = pd.DataFrame({"instrument": ["cello", "flute", "cello", "flute"],
                          "x1": [200, 10, 210, 30], "x2": [300, 60, 290, 70]})
    assert duet_true_sides(boxes) == {"flute": "left", "cello": "right"}
    with pytest.raises(ValueError, match="name 1 instruments"):
        duet_true_sides(boxes[boxes["instrument"] == "cello"])


def test_swapped_sides_name_both_instruments_but_place_neither():
    truth = {"cello": "left", "flute": "right"}
    swapped = {"instruments": ["flute", "cello"], "positions": ["left", "right"]}
    assert score_vision(swapped, list(truth), truth) == {
        "predicted": "flute:left,cello:right", "visual_correct": 1.0, "location_acc": 0.0, "uncertain": False}
    one_wrong = {"instruments": ["cello", "violin"], "positions": ["left", "right"], "uncertain": True}
    scored = score_vision(one_wrong, list(truth), truth)
    assert scored["visual_correct"] == 0.0 and scored["location_acc"] == 0.5 and scored["uncertain"]
    assert np.isnan(score_vision(one_wrong, list(truth), None)["location_acc"])


def test_intervals_contain_the_mean_and_narrow_with_more_items():
    lo, hi = bootstrap_interval([1, 0, 1, 1])
    assert lo <= 0.75 <= hi and hi - lo > 0.3
    lo2, hi2 = bootstrap_interval([1, 0, 1, 1] * 25)
    assert lo2 <= 0.75 <= hi2 and hi2 - lo2 < (hi - lo) / 2
    assert bootstrap_interval([1, 0, 1]) == bootstrap_interval([1, 0, 1])  # seeded
    assert all(np.isnan(bootstrap_interval([np.nan])))


def test_summary_per_kind_and_label_source():
    rows = pd.DataFrame({"kind": ["mixture", "mixture", "duet", "duet"],
                         "labels_from": ["vision", "vision", "vision", "folder+vision"],
                         "visual_correct": [1.0, 0.0, 0.0, 1.0], "location_acc": [1.0, 0.5, np.nan, 1.0],
                         "uncertain": [False, True, False, False]})
    summary = summarize_vision(rows).set_index(["kind", "labels_from"])
    assert summary.loc[("mixture", "vision"), "visual_acc"] == 0.5
    assert summary.loc[("mixture", "vision"), "location_acc"] == 0.75
    assert summary.loc[("mixture", "vision"), "uncertain"] == 1
    assert np.isnan(summary.loc[("duet", "vision"), "location_acc"])


def test_side_confusion_counts_other_names_in_the_last_column():
    cm = side_confusion([("cello", "cello"), ("flute", "violin"), ("flute", "flute")], ["cello", "flute"])
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]


def test_audio_tags_add_an_audio_vision_row_per_item_beside_visions_own():
    from avsep.vision.scores import score_records

    plan = pd.DataFrame({"mix_id": ["mix000"], "left_instrument": ["cello"], "right_instrument": ["flute"]})
    manifest = pd.DataFrame({"video_id": ["duet-00"], "kind": ["duet"], "split": ["test"], "labels": ["cello,violin"]})
    probs = {"left": {"cello": 0.7, "flute": 0.1, "violin": 0.2}, "right": {"cello": 0.1, "flute": 0.3, "violin": 0.6}}
    records = {i: {"item": i, "instruments": ["cello", "violin"], "positions": ["left", "right"], "side_probs": probs}
               for i in ("mix000", "duet-00")}
    tags = {"mix000": {"ranked": ["flute", "cello", "violin"], "silent": False},
            "duet-00": {"ranked": ["violin", "cello", "flute"], "silent": False}}
    rows, pairs = score_records(records, plan, manifest, {})
    assert set(rows["labels_from"]) == {"vision", "folder+vision"}
    rows, pairs_with_tags = score_records(records, plan, manifest, {}, tags)
    by = rows.set_index(["item", "labels_from"])
    assert by.loc[("mix000", "vision"), "visual_correct"] == 0.0  # vision sees a violin
    assert by.loc[("mix000", "audio+vision"), "visual_correct"] == 1.0  # audio hears the flute
    assert by.loc[("mix000", "audio+vision"), "location_acc"] == 1.0
    assert by.loc[("duet-00", "audio+vision"), "visual_correct"] == 1.0
    assert len(rows) == 5
    assert pairs_with_tags == pairs  # the confusion matrix stays vision's own
