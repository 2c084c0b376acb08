"""Localization: the metrics on hand-computed cases, the boxes carried onto mixture frames,
COCO files and their errors, the maps files, and the maps the tiny workflow writes."""

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from avsep.errors import InputError
from avsep.files import read_frames, write_frames, write_wav
from avsep.localization import (box_mask, ciou, mixture_truth, nsa, positives, read_coco, read_maps, score_item,
                                success_auc, summarize, video_truth, write_maps)
from avsep.media import decode_frames
from avsep.mixtures import build_mixture
from tests.conftest import make_media

H, W = 40, 60
BOX = np.array([[10.0, 8.0, 30.0, 18.0]])  # 20 x 10 pixels


def test_box_mask_takes_the_pixels_whose_centres_are_inside():
    mask = box_mask(BOX, H, W)
    assert mask.sum() == 200
    assert mask[8, 10] and mask[17, 29] and not mask[18, 29] and not mask[8, 30] and not mask[7, 10]
    # A box ending in the middle of a pixel takes that pixel only when it covers its centre.
    assert box_mask([[0, 0, 2.4, 1]], 2, 4).sum() == 2 and box_mask([[0, 0, 2.6, 1]], 2, 4).sum() == 3


def test_ciou_of_a_perfect_map_an_all_positive_map_and_a_miss():
    mask = box_mask(BOX, H, W)
    perfect = mask.astype(np.float32)
    for rule in ("median", "max_fraction"):
        assert ciou(positives(perfect, rule), mask) == 1.0
    whole = np.ones((H, W), np.float32)
    for rule in ("median", "max_fraction"):
        assert ciou(positives(whole, rule), mask) == pytest.approx(200 / (H * W))
    miss = np.zeros((H, W), np.float32)
    miss[25:35, 40:55] = 1.0
    assert ciou(positives(miss, "max_fraction"), mask) == 0.0
    # Half the box found and as much again outside it: 100 / (200 + 100).
    half = np.zeros((H, W), np.float32)
    half[8:18, 10:20] = 1.0
    half[25:35, 40:50] = 1.0
    assert ciou(positives(half, "max_fraction"), mask) == pytest.approx(1 / 3)
    # A map of zeros predicts nothing.
    assert ciou(positives(np.zeros((H, W)), "median"), mask) == 0.0


def test_threshold_rules_take_the_top_half_or_a_fraction_of_the_maximum():
    ramp = np.arange(H * W, dtype=np.float64).reshape(H, W) / (H * W)
    assert positives(ramp, "median").sum() == H * W // 2
    assert positives(ramp, "max_fraction", 0.75).sum() == np.sum(ramp >= 0.75 * ramp.max())
    with pytest.raises(InputError, match="threshold rule"):
        positives(ramp, "mean")


def test_auc_of_a_known_success_curve():
    # Success rate 1 at t = 0, 2/3 up to 0.5, 1/3 up to 1: by the trapezoid rule over the 21
    # points, 0.05 * (1 + 2/3) / 2 + 9 * 0.05 * 2/3 + 0.05 * (2/3 + 1/3) / 2 + 9 * 0.05 / 3.
    assert success_auc([0.0, 0.5, 1.0]) == pytest.approx(0.041667 + 0.3 + 0.025 + 0.15, abs=1e-5)
    assert success_auc([1.0] * 4) == pytest.approx(1.0)
    assert success_auc([0.0, 0.0]) == pytest.approx(0.05 / 2)
    assert np.isnan(success_auc([]))


def test_nsa_is_the_share_of_an_absent_instruments_map_at_or_below_02():
    heat = np.zeros((10, 10))
    heat[:3] = 0.9
    heat[3, :5] = 0.2  # at the level: silent
    assert nsa(heat) == pytest.approx(0.7)


def _maps(heat, names=("cello", "flute")):
    return {"maps": np.asarray(heat, np.float32), "instruments": list(names), "timestamps": np.arange(len(heat), dtype=float),
            "frame_index": np.arange(len(heat))}


def test_scores_are_class_aware_and_absent_instruments_give_nsa():
    mask = box_mask(BOX, H, W).astype(np.float32)
    # Frame 0: the cello's map is its box, the flute (absent) is silent. Frame 1: the maps are
    # swapped, so the cello is missed and the absent flute's map lights up.
    heat = np.stack([np.stack([mask, np.zeros((H, W))]), np.stack([np.zeros((H, W)), mask])])
    truth = [pd.DataFrame({"instrument": ["cello"], "x1": [10.0], "y1": [8.0], "x2": [30.0], "y2": [18.0]})] * 2
    rows = score_item("mix000", "cam", _maps(heat), truth)
    cello = rows[rows["instrument"] == "cello"]
    assert list(cello["ciou_max_fraction"]) == [1.0, 0.0]
    flute = rows[rows["instrument"] == "flute"]
    assert list(flute["present"]) == [False, False]
    assert flute["nsa"].tolist() == pytest.approx([1.0, 1 - 200 / (H * W)])
    summary = summarize(rows).iloc[0]
    assert summary["ciou50_max_fraction"] == 0.5 and summary["pairs"] == 2
    assert summary["median_cap_ciou"] == pytest.approx(min(1.0, 2 * 200 / (H * W)))


def test_a_frame_without_boxes_is_not_scored_and_unknown_instruments_are_an_error():
    heat = np.zeros((2, 2, H, W), np.float32)
    none = pd.DataFrame(columns=["instrument", "x1", "y1", "x2", "y2"])
    box = pd.DataFrame({"instrument": ["cello"], "x1": [1.0], "y1": [1.0], "x2": [5.0], "y2": [5.0]})
    assert set(score_item("d", "whole", _maps(heat), [none, box])["frame"]) == {1}
    trumpet = box.assign(instrument="trumpet")
    with pytest.raises(InputError, match="trumpet"):
        score_item("d", "whole", _maps(heat), [trumpet, trumpet])


# -- the boxes on mixture frames ---------------------------------------------------------------
def _square_video(path: Path, x0: int, y0: int, speed: float, seconds: float = 4.0) -> Path:
    """A 160x120 video with a white 30x20 square on black whose left edge moves by
    ``speed`` pixels per second from ``x0``; its annotation rows every 0.1 s."""
    graph = (f"color=c=black:size=160x120:rate=10:duration={seconds}[bg];"
             f"color=c=white:size=30x20:rate=10:duration={seconds}[sq];[bg][sq]overlay=x='{x0}+{speed}*t':y={y0}[out0]")
    return make_media(path, seconds=seconds, video_source=graph, audio=True)


def _square_annotations(instrument: str, x0: int, y0: int, speed: float, seconds: float = 4.0) -> pd.DataFrame:
    t = np.round(np.arange(0, seconds, 0.1), 6)
    x = x0 + speed * t
    return pd.DataFrame({"time": t, "instrument": instrument, "x1": x, "y1": float(y0), "x2": x + 30, "y2": y0 + 20.0})


def _bright_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_boxes_are_carried_onto_the_mixture_frames_where_the_squares_are(tmp_path):
    """Two videos with a moving white square each, resized from 160x120 to 64x64 frames and
    cut from different starts into a side-by-side mixture: the carried boxes cover the
    squares as drawn in the mixture's frames."""
    specs = {"left": ("cello", 20, 30, 10.0), "right": ("flute", 90, 70, -15.0)}
    sources, annotations = {}, {}
    for side, (inst, x0, y0, speed) in specs.items():
        video = _square_video(tmp_path / f"{inst}.mp4", x0, y0, speed)
        frames, stamps = decode_frames(video, fps=2.0, width=64, height=64)
        write_frames(tmp_path / f"{inst}.h5", frames, stamps, fps=2.0)
        write_wav(tmp_path / f"{inst}.wav", np.zeros(16000 * 4, np.float32), 16000)
        annotations[f"{inst}-00"] = _square_annotations(inst, x0, y0, speed)
        sources[side] = inst
    plan = {"mix_id": "mix000", "seconds": 2.0, "left_video": "cello-00", "left_instrument": "cello",
            "left_start": 1.5, "right_video": "flute-00", "right_instrument": "flute", "right_start": 0.5}
    meta = build_mixture(plan, left_audio=tmp_path / "cello.wav", right_audio=tmp_path / "flute.wav",
                         left_frames=tmp_path / "cello.h5", right_frames=tmp_path / "flute.h5",
                         out_dir=tmp_path / "mix000", frame_fps=2.0)
    frames, stamps, _ = read_frames(tmp_path / "mix000" / "frames.h5")
    assert frames.shape[1:3] == (64, 128)
    truth = mixture_truth(meta, annotations, {"cello-00": (160, 120), "flute-00": (160, 120)}, stamps,
                          frame_width=128, frame_height=64, tolerance=0.25)
    assert len(truth) == len(frames) == 4
    for frame, rows in zip(frames, truth):
        for inst, half in (("cello", slice(0, 64)), ("flute", slice(64, 128))):
            drawn = np.zeros(frame.shape[:2], bool)
            drawn[:, half] = frame[:, half].mean(axis=2) > 128
            box = rows[rows["instrument"] == inst][["x1", "y1", "x2", "y2"]].to_numpy()
            assert len(box) == 1
            # The carried box and the drawn square agree to within a pixel of the 64 px frame
            # (the square is 30/160 x 20/120 of the source: 12 x 10.7 pixels here).
            assert np.abs(np.array(_bright_box(drawn)) - box[0]).max() <= 1.0, (inst, box, _bright_box(drawn))
            assert ciou(box_mask(box, 64, 128), drawn) > 0.75


def test_a_duets_boxes_are_scaled_to_its_frames():
    rows = pd.DataFrame({"time": [0.0, 0.0, 1.0], "instrument": ["cello", "flute", "cello"],
                         "x1": [10.0, 200.0, 12.0], "y1": [20.0, 20.0, 20.0], "x2": [50.0, 260.0, 52.0],
                         "y2": [100.0, 120.0, 100.0]})
    truth = video_truth(rows, (320, 240), [0.0, 1.0, 5.0], frame_width=160, frame_height=160, tolerance=0.5)
    assert truth[0][["x1", "y1", "x2", "y2"]].to_numpy() == pytest.approx(
        np.array([[5.0, 20 * 160 / 240, 25.0, 100 * 160 / 240], [100.0, 20 * 160 / 240, 130.0, 80.0]]))
    assert list(truth[1]["instrument"]) == ["cello"]
    assert truth[2].empty  # no annotated time within half a second


def test_a_missing_sources_boxes_are_an_error():
    meta = {"mix_id": "mix003", "sources": [{"video_id": "cello-01", "start": 0.0, "position": "left"}]}
    with pytest.raises(InputError, match="mix003.*cello-01"):
        mixture_truth(meta, {}, {"cello-01": (320, 240)}, [0.0], frame_width=64, frame_height=32, tolerance=0.5)


# -- COCO ----------------------------------------------------------------------------------------
def _coco(path: Path, **changes) -> Path:
    coco = {"images": [{"id": 1, "file_name": "duet-00/2.5.jpg", "width": 320, "height": 240},
                       {"id": 2, "item": "mix001", "time": 3.0, "width": 640, "height": 320}],
            "categories": [{"id": 7, "name": "cello"}, {"id": 9, "name": "flute"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 20, 40, 80]},
                            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [200, 20, 60, 100]},
                            {"id": 3, "image_id": 2, "category_id": 9, "bbox": [400, 0, 100, 320]}]}
    coco.update(changes)
    path.write_text(json.dumps(coco))
    return path


def test_coco_boxes_are_read_per_item_and_time(tmp_path):
    boxes = read_coco(_coco(tmp_path / "boxes.json"), ["duet-00", "mix001"], ["cello", "flute", "violin"])
    assert sorted(boxes) == ["duet-00", "mix001"]
    duet = boxes["duet-00"]
    assert duet["time"].tolist() == [2.5, 2.5]
    assert duet[["instrument", "x1", "y1", "x2", "y2"]].values.tolist() == [["cello", 10, 20, 50, 100],
                                                                             ["flute", 200, 20, 260, 120]]
    assert boxes["mix001"][["width", "height"]].values.tolist() == [[640, 320]]


@pytest.mark.parametrize("change, message", [
    ({"annotations": [{"id": 5, "image_id": 3, "category_id": 7, "bbox": [0, 0, 1, 1]}]}, "unknown image 3"),
    ({"annotations": [{"id": 5, "image_id": 1, "category_id": 8, "bbox": [0, 0, 1, 1]}]}, "unknown category 8"),
    ({"annotations": [{"id": 5, "image_id": 1, "category_id": 7, "bbox": [300, 10, 40, 10]}]}, "leaves its 320 x 240"),
    ({"annotations": [{"id": 5, "image_id": 1, "category_id": 7, "bbox": [-1, 10, 40, 10]}]}, "leaves its"),
    ({"annotations": [{"id": 5, "image_id": 1, "category_id": 7, "bbox": [1, 10, 0, 10]}]}, "empty box"),
    ({"categories": [{"id": 7, "name": "banjo"}]}, "banjo.*not instruments"),
    ({"images": [{"id": 1, "file_name": "duet-09/1.0.jpg", "width": 320, "height": 240}]}, "duet-09"),
    ({"images": [{"id": 1, "file_name": "frame.jpg", "width": 320, "height": 240}]}, "give it 'item' and 'time'"),
])
def test_coco_errors_name_what_is_wrong(tmp_path, change, message):
    with pytest.raises(InputError, match=message):
        read_coco(_coco(tmp_path / "boxes.json", **change), ["duet-00", "mix001"], ["cello", "flute"])


def test_a_coco_file_that_is_not_coco_is_an_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_coco(tmp_path / "missing.json", [], [])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        read_coco(tmp_path / "bad.json", [], [])
    (tmp_path / "partial.json").write_text(json.dumps({"images": []}))
    with pytest.raises(InputError, match="annotations"):
        read_coco(tmp_path / "partial.json", [], [])


# -- the maps files --------------------------------------------------------------------------------
def test_maps_files_keep_their_layout(tmp_path):
    heat = np.random.default_rng(0).random((3, 2, H, W)).astype(np.float32)
    path = tmp_path / "cam" / "mix000.h5"
    write_maps(path, heat, instruments=["cello", "flute"], timestamps=[0.0, 2.0, 4.0], frame_index=[0, 2, 4],
               method="cam")
    with h5py.File(path) as h5:
        assert h5["maps"].dtype == np.float32 and h5["maps"].shape == (3, 2, H, W)
        assert [s.decode() for s in h5["instruments"][()]] == ["cello", "flute"]
        assert h5["timestamps"][()].tolist() == [0.0, 2.0, 4.0]
    back = read_maps(path)
    assert np.abs(back["maps"] - heat).max() <= 1 / 8192 + 1e-7
    assert back["attrs"]["method"] == "cam" and back["frame_index"].tolist() == [0, 2, 4]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        write_maps(path, heat * 2, instruments=["cello", "flute"], timestamps=[0, 1, 2], frame_index=[0, 1, 2],
                   method="cam")
    with pytest.raises(ValueError, match="1 instruments"):
        write_maps(path, heat, instruments=["cello"], timestamps=[0, 1, 2], frame_index=[0, 1, 2], method="cam")


# -- the maps from the models -------------------------------------------------------------------------
def test_cam_maps_are_the_linear_heads_class_probabilities_at_each_cell():
    from avsep.vision.maps import cam_maps
    from avsep.vision.regions import RegionClassifier

    model = RegionClassifier("efficientnet_lite0", 2, pretrained=False)
    torch.manual_seed(0)
    features = torch.zeros(1, model.head.in_features, 2, 3)
    features[0, :, 0, 0] = 1.0  # one cell looks like class 1, the rest like nothing at all
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.copy_(torch.tensor([0.0, 0.0, 4.0]))  # background everywhere...
        model.head.weight[1] = 10.0 / model.head.in_features  # ...except where class 1's features are
    heat = cam_maps(model, features, 2, height=20, width=30)
    assert heat.shape == (1, 2, 20, 30) and heat.min() >= 0 and heat.max() <= 1
    assert heat[0, 1, :5, :5].mean() > 0.9 and heat[0, 1, 15:, 20:].max() < 0.05
    assert heat[0, 0].max() < 0.05


def test_the_av_head_learns_where_a_sound_comes_from():
    """Two kinds of frames and sounds: the box cells of a frame of instrument k carry feature
    k; after training, each instrument's clips light up its own cells, not the other's."""
    from avsep.localization import box_mask as mask_of
    from avsep.vision.correspondence import av_maps, train_correspondence

    rng = np.random.default_rng(0)
    dim, grid = 16, 6

    def video(label):
        maps = torch.from_numpy(rng.normal(0, 0.3, (2, dim, grid, grid)).astype(np.float32))
        cells = np.zeros((2, grid, grid), bool)
        for f in range(2):
            x, y = rng.integers(0, grid - 2, 2)
            cells[f] = mask_of([[x, y, x + 2, y + 2]], grid, grid)
            maps[f, label, torch.from_numpy(cells[f])] += 2.0
        audio = rng.normal(0, 0.3, (10, 8)).astype(np.float32)
        audio[:, label] += 2.0
        return maps, audio, cells

    data = {"maps": [], "audio": [], "label": [], "cells": []}
    for label in (0, 1) * 6:
        maps, audio, cells = video(label)
        data["maps"].append(maps), data["audio"].append(audio), data["label"].append(label), data["cells"].append(cells)
    head, history, extra = train_correspondence(data, None, epochs=15, steps_per_epoch=10, batch_size=8, lr=3e-3)
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    maps, audio, cells = video(1)
    heat = av_maps(head, maps[:1], {1: audio[:1]}, extra["prototypes"], 2, height=grid, width=grid)
    inside = cells[0]
    assert heat[0, 1][inside].mean() > 0.5 > heat[0, 1][~inside].mean()
    # Instrument 0 has no track: its prototype finds nothing of it in this frame.
    assert heat[0, 0].max() < heat[0, 1][inside].mean()


# -- the workflow --------------------------------------------------------------------------------------
def test_the_workflow_writes_every_methods_maps_aligned_with_the_items_frames(tiny_run):
    import yaml

    methods = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "config.yaml").read_text())[
        "localization"]["methods"]
    items = sorted(p.stem for p in (tiny_run / "results" / "vision").glob("*.json"))
    assert items
    for item in items:
        frames_file = (tiny_run / "results" / "mixtures" / item / "frames.h5" if item.startswith("mix")
                       else tiny_run / "results" / "frames" / f"{item}.h5")
        frames, stamps, _ = read_frames(frames_file)
        for method in methods:
            maps = read_maps(tiny_run / "results" / "localization" / method / f"{item}.h5")
            n, k, h, w = maps["maps"].shape
            assert (h, w) == frames.shape[1:3] and k == len(maps["instruments"]) and n == len(maps["timestamps"])
            assert np.allclose(stamps[maps["frame_index"]], maps["timestamps"])
    summary = pd.read_csv(tiny_run / "results" / "localization" / "summary.tsv", sep="\t")
    assert list(summary["method"]) == methods
    whole = summary.set_index("method").loc["whole"]
    assert whole["nsa"] == 0 and whole["auc_max_fraction"] < 0.5
    page = (tiny_run / "results" / "report" / "showcase" / "mix000.html").read_text()
    assert "localization maps" in page


def _manifest(path: Path) -> Path:
    rows = [("cello-00", "solo", "cello"), ("flute-00", "solo", "flute"), ("duet-00", "duet", "cello,flute")]
    pd.DataFrame([{"video_id": v, "path": f"{v}.mp4", "kind": k, "labels": lab, "split": "test", "duration": 4.0,
                   "sample_rate": 22050, "channels": 1, "width": 320, "height": 240, "fps": 10.0}
                  for v, k, lab in rows]).to_csv(path, sep="\t", index=False)
    return path


def _evaluate(tmp_path, heat, coco=""):
    import logging

    from avsep.vision.localize import evaluate_localization

    maps = tmp_path / "cam" / "duet-00.h5"
    write_maps(maps, heat, instruments=["cello", "flute"], timestamps=[2.5], frame_index=[5], method="cam")
    out = {k: tmp_path / f"{k}.{ext}" for k, ext in (("rows", "tsv"), ("summary", "tsv"), ("markdown", "md"),
                                                      ("plot", "png"))}
    summary = evaluate_localization(
        {"cam": [str(maps)]}, manifest_path=_manifest(tmp_path / "manifest.tsv"), annotation_paths=[],
        mixture_dirs={}, loc={"annotations": coco, "max_fraction": 0.5, "seed": 0}, frames_fps=2.0,
        rows_path=out["rows"], summary_path=out["summary"], markdown_path=out["markdown"], plot_path=out["plot"],
        log=logging.getLogger("test"))
    return summary, out


def test_coco_boxes_are_scaled_from_their_image_to_the_map_frames(tmp_path):
    # The COCO image is 320x240, the duet's frames 160x160: the cello's box [10, 20, 40, 80]
    # becomes x 5..25, y 13.3..66.7 there.
    heat = np.zeros((1, 2, 160, 160), np.float32)
    heat[0, 0, 14:67, 5:25] = 1.0
    heat[0, 1, 14:67, 5:25] = 1.0  # the flute's map sits on the cello too
    coco = _coco(tmp_path / "boxes.json", images=[{"id": 1, "file_name": "duet-00/2.5.jpg", "width": 320,
                                                   "height": 240}],
                 annotations=[{"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 20, 40, 80]}])
    summary, out = _evaluate(tmp_path, heat, coco=str(coco))
    rows = pd.read_csv(out["rows"], sep="\t").set_index("instrument")
    assert rows.loc["cello", "ciou_max_fraction"] > 0.9
    # The flute has no box in this frame: absent, its map (on the cello) counts against NSA.
    assert not rows.loc["flute", "present"] and rows.loc["flute", "nsa"] == pytest.approx(1 - 53 * 20 / 160**2)
    assert summary.iloc[0]["ciou50_max_fraction"] == 1.0
    assert "| cam |" in out["markdown"].read_text()


def test_items_without_boxes_are_mapped_but_not_scored(tmp_path):
    summary, out = _evaluate(tmp_path, np.zeros((1, 2, 16, 16), np.float32))
    assert summary["pairs"].tolist() == [0]
    assert "not scored" in out["markdown"].read_text() and out["plot"].is_file()
