"""The detector method: detection rows, checkpoints, clear errors, and per-video pooling."""

import numpy as np
import pandas as pd
import pytest
import torch

from avsep.detector import DETECTION_COLUMNS, build_detector, detect, load_detector, top_detections
from avsep.errors import InputError

NAMES = ["cello", "flute", "violin"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = build_detector(3, score_threshold=0.0)
    path = tmp_path_factory.mktemp("det") / "detector.pt"
    torch.save(model.state_dict(), path)
    frames = np.random.default_rng(0).integers(0, 255, (2, 120, 160, 3), dtype=np.uint8)
    return model, path, frames


def test_detection_rows_have_the_seed_format(saved):
    model, _, frames = saved
    rows = detect(model, frames)
    assert list(rows.columns) == DETECTION_COLUMNS and len(rows) > 0
    assert rows["frame_index"].dtype.kind == "i" and rows["class_id"].dtype.kind == "i"
    assert set(rows["frame_index"]) <= {0, 1} and rows["class_id"].between(0, 2).all()
    assert rows["score"].between(0, 1).all()
    assert (rows["x1"] <= rows["x2"]).all() and (rows["y1"] <= rows["y2"]).all()
    assert rows["x2"].max() <= 160 and rows["y2"].max() <= 120


def test_loaded_checkpoint_gives_the_same_detections(saved):
    model, path, frames = saved
    again = load_detector(path, 3, score_threshold=0.0)
    pd.testing.assert_frame_equal(detect(again, frames), detect(model, frames))


def test_bad_checkpoints_fail_clearly(saved, tmp_path):
    _, path, _ = saved
    with pytest.raises(InputError, match="detects 3 instrument classes, the dataset has 8"):
        load_detector(path, 8)
    with pytest.raises(InputError, match="does not exist"):
        load_detector(tmp_path / "nope.pt", 3)
    torch.save({"fc.weight": torch.zeros(3, 4)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a Faster R-CNN checkpoint"):
        load_detector(tmp_path / "other.pt", 3)


def test_top_detections_keeps_the_surest_instruments_with_mean_boxes():
    rows = pd.DataFrame(
        [(0, 0, 0.9, 10, 10, 50, 90), (0, 0, 0.4, 12, 10, 52, 90), (0, 2, 0.8, 110, 5, 150, 80),
         (1, 0, 0.7, 14, 10, 54, 90), (1, 2, 0.9, 112, 5, 152, 80), (1, 1, 0.3, 60, 0, 80, 20)],
        columns=DETECTION_COLUMNS,
    )
    top = top_detections(rows, NAMES, frame_width=160)
    assert [t["instrument"] for t in top] == ["violin", "cello"]  # 1.7 and 1.6 beat flute's 0.3
    cello = top[1]
    assert cello["frames"] == 2 and cello["score"] == pytest.approx(0.8)
    assert cello["box"] == [12.0, 10.0, 52.0, 90.0] and cello["position"] == "left"
    assert top[0]["position"] == "right"
    assert top_detections(rows.iloc[:0], NAMES, frame_width=160) == []
