"""The detector method: detection rows, checkpoints, clear errors, and per-video pooling."""

import numpy as np
import pandas as pd
import pytest
import torch

from avsep.vision.detector import DETECTION_COLUMNS, build_detector, detect, load_detector, top_detections
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


def test_own_checkpoint_records_classes_and_refuses_others(saved, tmp_path):
    from avsep.vision.detector import save_detector

    model, _, frames = saved
    path = tmp_path / "own.pt"
    save_detector(path, model, label_names=NAMES, input_size=320)
    again = load_detector(path, 3, label_names=NAMES, score_threshold=0.0)
    pd.testing.assert_frame_equal(detect(again, frames), detect(model, frames))
    with pytest.raises(InputError, match=r"detects \['cello', 'flute', 'violin'\], the config asks for"):
        load_detector(path, 3, label_names=["cello", "flute", "trumpet"])


def _annotations(tmp_path, text):
    path = tmp_path / "v.tsv"
    path.write_text(text)
    return path


def test_annotations_are_scaled_to_the_frames_at_the_nearest_time(tmp_path):
    from avsep.vision.annotations import frame_boxes, read_annotations

    path = _annotations(tmp_path, "frame_index\ttime\tinstrument\tx1\ty1\tx2\ty2\n"
                                  "0\t0.0\tflute\t10\t20\t110\t220\n1\t0.5\tflute\t30\t20\t130\t220\n")
    boxes = frame_boxes(read_annotations(path), np.array([0.1, 0.45]), scale=(0.5, 0.25), label_names=NAMES)
    np.testing.assert_allclose(boxes[0][0], [[5, 5, 55, 55]])
    np.testing.assert_allclose(boxes[1][0], [[15, 5, 65, 55]])
    assert boxes[0][1].tolist() == [1]


def test_bad_annotations_fail_naming_file_and_problem(tmp_path):
    from avsep.vision.annotations import frame_boxes, read_annotations

    with pytest.raises(InputError, match="no box annotations"):
        read_annotations(tmp_path / "missing.tsv")
    with pytest.raises(InputError, match=r"missing column\(s\) \['y2'\]"):
        read_annotations(_annotations(tmp_path, "time\tinstrument\tx1\ty1\tx2\n0\tflute\t1\t1\t2\n"))
    with pytest.raises(InputError, match="1 empty box"):
        read_annotations(_annotations(tmp_path, "time\tinstrument\tx1\ty1\tx2\ty2\n0\tflute\t5\t1\t5\t9\n"))
    table = read_annotations(_annotations(tmp_path, "time\tinstrument\tx1\ty1\tx2\ty2\n0\toboe\t1\t1\t5\t9\n"))
    with pytest.raises(InputError, match=r"\['oboe'\] outside the class list"):
        frame_boxes(table, np.array([0.0]), scale=(1, 1), label_names=NAMES)


def _rows(*dets):
    return pd.DataFrame(dets, columns=DETECTION_COLUMNS)


def test_description_orders_players_left_to_right_with_boxes_and_evidence():
    from avsep.vision.detector import describe_detections

    rows = _rows((0, 2, 0.9, 10, 10, 50, 90), (0, 0, 0.8, 110, 5, 150, 80), (1, 2, 0.7, 12, 10, 52, 90),
                 (1, 0, 0.9, 112, 5, 152, 80))
    out = describe_detections("mix001", rows, NAMES, [3, 7], np.arange(10) / 2, frame_width=160,
                              score_threshold=0.5)
    assert out["instruments"] == ["violin", "cello"] and out["positions"] == ["left", "right"]
    assert out["box_sides"] == ["left", "right"] and out["boxes"][0] == [11.0, 10.0, 51.0, 90.0]
    assert out["present"] == ["cello", "violin"] and not out["below_threshold"]
    assert [f["index"] for f in out["frames"]] == [3, 7] and out["frames"][1]["time"] == 3.5
    assert out["frames"][1]["detections"][0] == {"instrument": "cello", "score": 0.9, "box": [112.0, 5.0, 152.0, 80.0]}


def test_description_falls_back_to_weak_detections_and_keeps_solo_present_set():
    from avsep.vision.detector import describe_detections

    rows = _rows((0, 1, 0.95, 100, 10, 150, 90), (0, 0, 0.2, 0, 5, 40, 80))
    out = describe_detections("flute-03", rows, NAMES, [0], np.zeros(1), frame_width=160, score_threshold=0.5)
    assert out["below_threshold"] and out["instruments"] == ["cello", "flute"]
    assert out["present"] == ["flute"]  # the weak cello is not a weak label for MIML
    empty = describe_detections("x", rows.iloc[:0], NAMES, [0], np.zeros(1), frame_width=160, score_threshold=0.5)
    assert empty["instruments"] == [] and empty["present"] == []


def _squares(n: int, seed: int = 0):
    """``n`` frames of dark noise, each with one bright 40-pixel square: red (class 0) or
    green (class 1) in turn, at a random place; with their boxes."""
    rng = np.random.default_rng(seed)
    images, targets = [], []
    for k in range(n):
        img = rng.integers(0, 60, (96, 96, 3), dtype=np.uint8)
        x, y = rng.integers(4, 50, 2)
        img[y : y + 40, x : x + 40, k % 2] = 255
        images.append(img)
        targets.append((np.array([[x, y, x + 40, y + 40]], np.float32), np.array([k % 2])))
    return np.stack(images), targets


def test_training_on_boxes_learns_to_find_a_square():
    """The default detector (the pretrained EfficientNet-Lite0 trunk) learns to name and box
    two classes of squares on frames it was not trained on."""
    from avsep.vision.detector import evaluate_detector, train_detector

    images, targets = _squares(64)
    model, history = train_detector(images[:48], targets[:48], 2, input_size=128, epochs=6, batch_size=8,
                                    lr=1e-3, val=(images[48:], targets[48:]), backbone="efficientnet_lite0")
    assert len(history) == 6 and all(np.isfinite(h["loss"]) for h in history)
    scores = evaluate_detector(model, images[48:], targets[48:])
    assert scores["acc"] >= 0.9 and scores["iou"] >= 0.6


def test_the_detector_from_scratch_trains_every_layer():
    """``mobilenet_v3_large_fpn`` starts from random weights (the same ones for the same
    seed): every weight of its trunk moves and the training loss falls. Naming and boxing
    well from scratch takes minutes more than a unit test should; the default is pretrained."""
    from avsep.vision.detector import build_detector, train_detector

    images, targets = _squares(32)
    torch.manual_seed(0)
    start = build_detector(2, input_size=96).state_dict()
    model, history = train_detector(images, targets, 2, input_size=96, epochs=4, batch_size=8, lr=1e-3)
    assert all(p.requires_grad for p in model.parameters())
    trained = model.state_dict()
    trunk = [k for k, v in start.items() if "backbone.body" in k and v.is_floating_point()
             and not k.endswith(("running_mean", "running_var"))]
    assert trunk and all(not torch.equal(start[k], trained[k]) for k in trunk)
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]


def test_side_pooling_takes_each_sides_surest_instrument():
    from avsep.vision.detector import describe_detections, side_detections

    # Two strong detections on the left (the saxophone is a false second box on the
    # left player); the flute on the right is seen less surely.
    rows = _rows((0, 2, 0.9, 10, 10, 50, 90), (0, 0, 0.8, 15, 10, 55, 90), (0, 1, 0.6, 110, 5, 150, 80),
                 (1, 2, 0.9, 12, 10, 52, 90), (1, 0, 0.7, 14, 10, 50, 90), (1, 1, 0.55, 112, 5, 152, 80))
    assert [t["instrument"] for t in top_detections(rows, NAMES, frame_width=160)] == ["violin", "cello"]
    sides = side_detections(rows, NAMES, frame_width=160)
    assert [(t["instrument"], t["position"]) for t in sides] == [("violin", "left"), ("flute", "right")]
    out = describe_detections("duet-00", rows, NAMES, [0, 1], np.arange(2.0), frame_width=160,
                              score_threshold=0.5, sides=True)
    assert out["instruments"] == ["violin", "flute"] and out["box_sides"] == ["left", "right"]


def test_side_pooling_never_names_one_instrument_twice():
    from avsep.vision.detector import side_detections

    rows = _rows((0, 2, 0.9, 10, 10, 50, 90), (0, 2, 0.5, 110, 5, 150, 80), (0, 1, 0.3, 112, 5, 152, 80))
    sides = side_detections(rows, NAMES, frame_width=160)
    assert [(t["instrument"], t["position"]) for t in sides] == [("violin", "left"), ("flute", "right")]


def test_pretrained_trunk_stays_frozen_and_the_checkpoint_rebuilds_it(tmp_path):
    """The EfficientNet-Lite0 detector: the ImageNet trunk is not trained, the pyramid and
    heads are, and a saved checkpoint rebuilds the same detector without the package file."""
    from avsep.vision.backbones import build_backbone
    from avsep.vision.detector import detect, load_detector, save_detector, train_detector

    images, targets = _squares(12, seed=1)
    model, history = train_detector(images, targets, 2, input_size=96, epochs=2, batch_size=4, lr=1e-3,
                                    backbone="efficientnet_lite0")
    assert len(history) == 2 and sum(h["selected"] for h in history) == 1
    imagenet = build_backbone("efficientnet_lite0").net.state_dict()
    trunk = model.backbone.trunk.state_dict()
    assert all(torch.equal(trunk[k], imagenet[k]) for k in imagenet), "the frozen trunk was trained"
    save_detector(tmp_path / "det.pt", model, label_names=["a", "b"], input_size=96)
    again = load_detector(tmp_path / "det.pt", 2, label_names=["a", "b"], score_threshold=0.05)
    model.roi_heads.score_thresh = 0.05
    pd.testing.assert_frame_equal(detect(again, images[:3]), detect(model, images[:3]))
