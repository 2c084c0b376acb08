"""The region classifier (avsep.vision.regions): trained on instrument boxes, it names the object
rather than what surrounds it, and its window scores are exact."""

import numpy as np
import pytest
import torch

from avsep.config import vision_problems
from avsep.errors import InputError
from avsep.vision.regions import GRID, RegionClassifier, recolour_frames, region_means, train_region_head, window_grid
from avsep.vision.classifier import classify_images, load_classifier, save_classifier, to_batch
from avsep.vision.training import train_classifier_head

SIZE = 192  # input pixels: the 128 px scenes upsampled, a 6 x 6 feature map
DISTRACTOR_COLOURS = [(230, 200, 40), (40, 200, 230), (230, 40, 200)]


def _scene(kind, distractor, rng, size=128):
    """A grey room with a small object of class ``kind`` (a disc, a thin bar, a checker)
    and, below it, a large patterned patch: the "outfit", drawn as ``distractor``."""
    img = np.full((size, size, 3), 110.0) + rng.normal(0, 10, (size, size, 3))
    s = 56
    x0 = int(rng.integers(0, size - s))
    yy, xx = np.mgrid[0:s, 0:s]
    pattern = [(yy // 7) % 2 == 0, (xx // 7) % 2 == 0, (xx - s / 2) ** 2 + (yy - s / 2) ** 2 < (s / 2.2) ** 2]
    img[size - s :, x0 : x0 + s][pattern[distractor]] = DISTRACTOR_COLOURS[distractor]
    s = int(rng.integers(26, 34))
    x0, y0 = int(rng.integers(4, size - s - 4)), int(rng.integers(4, size - 56 - s))
    yy, xx = np.mgrid[0:s, 0:s]
    if kind == 0:
        mask, box = (xx - s / 2) ** 2 + (yy - s / 2) ** 2 < (s / 2) ** 2, (x0, y0, x0 + s, y0 + s)
    elif kind == 1:
        mask, box = np.abs(yy - s / 2) < 3, (x0, y0 + s / 2 - 4, x0 + s, y0 + s / 2 + 4)
    else:
        mask, box = (xx // 6 + yy // 6) % 2 == 0, (x0, y0, x0 + s, y0 + s)
    img[y0 : y0 + s, x0 : x0 + s][mask] = (20, 20, 20) if kind == 2 else (250, 250, 250)
    return np.clip(img, 0, 255).astype(np.uint8), np.array([box], np.float32)


def _scenes(per_class, shift, seed):
    """Images, boxes and labels; class k wears distractor (k + shift) % 3, so in training
    (shift 0) the distractor tells the classes apart as well as the object does."""
    rng = np.random.default_rng(seed)
    images, boxes, labels = [], [], []
    for k in range(3):
        for _ in range(per_class):
            img, box = _scene(k, (k + shift) % 3, rng)
            images.append(img)
            boxes.append((box, np.array([k])))
            labels.append(k)
    return np.stack(images), boxes, np.array(labels)


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    images, boxes, labels = _scenes(16, 0, 0)
    val = _scenes(6, 1, 1)
    model, history = train_region_head(images, boxes, 3, input_size=SIZE, val=val[::2])
    return model, history, (images, boxes, labels), val


def test_region_head_names_the_object_where_a_whole_frame_head_names_the_distractor(trained):
    model, history, (images, _, labels), val = trained
    test_images, test_boxes, test_labels = _scenes(6, 2, 2)  # another pairing of objects and distractors
    region = float((classify_images(model, list(test_images), input_size=SIZE).argmax(1) == test_labels).mean())
    assert region >= 0.8, f"the region head names {region:.2f} of the objects with other distractors"
    # The whole-frame head on the same frozen features learns the distractor instead.
    frame, _ = train_classifier_head(images, labels, 3, input_size=SIZE, val=val[::2])
    whole = float((classify_images(frame, list(test_images), input_size=SIZE).argmax(1) == test_labels).mean())
    assert whole <= 0.5, f"the whole-frame head names {whole:.2f}: the test no longer shows the difference"
    selected = [row for row in history if row["selected"]]
    assert len(selected) == 1 and selected[0]["val_acc"] == max(row["val_acc"] for row in history)


OBJECT_COLOURS = [(220, 40, 40), (40, 200, 40), (40, 60, 230)]


def _painted(per_class, shift, seed, size=128):
    """A disc, a thin bar or a checker on a grey room; class k is painted in colour
    (k + shift) % 3, so that in training (shift 0) its colour names it as well as its shape."""
    rng = np.random.default_rng(seed)
    images, boxes, labels = [], [], []
    for k in range(3):
        for _ in range(per_class):
            img = np.full((size, size, 3), 110.0) + rng.normal(0, 10, (size, size, 3))
            s = int(rng.integers(22, 30))
            x0, y0 = int(rng.integers(4, size - s - 4)), int(rng.integers(4, size - s - 4))
            yy, xx = np.mgrid[0:s, 0:s]
            mask = [(xx - s / 2) ** 2 + (yy - s / 2) ** 2 < (s / 2) ** 2, np.abs(yy - s / 2) < 3,
                    (xx // 6 + yy // 6) % 2 == 0][k]
            img[y0 : y0 + s, x0 : x0 + s][mask] = OBJECT_COLOURS[(k + shift) % 3]
            box = (x0, y0 + s / 2 - 4, x0 + s, y0 + s / 2 + 4) if k == 1 else (x0, y0, x0 + s, y0 + s)
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            boxes.append((np.array([box], np.float32), np.array([k])))
            labels.append(k)
    return np.stack(images), boxes, np.array(labels)


def test_recoloured_training_names_objects_whose_colours_changed():
    images, boxes, _ = _painted(16, 0, 0)
    val = _painted(6, 0, 1)
    swapped = [_painted(6, shift, 2 + shift) for shift in (1, 2)]  # every object in another class's colour

    def accuracy(recolour):
        torch.manual_seed(0)
        model, _ = train_region_head(images, boxes, 3, input_size=SIZE, val=(val[0], val[2]), recolour=recolour)
        return np.mean([(classify_images(model, list(x), input_size=SIZE).argmax(1) == y).mean()
                        for x, _, y in swapped])

    plain, recoloured = accuracy(0.0), accuracy(1.0)
    assert recoloured >= 0.9, f"trained on recoloured frames, the head names {recoloured:.2f} of the swapped objects"
    assert plain <= recoloured - 0.05, f"without recolouring {plain:.2f}: the test no longer shows what it buys"


def test_recolour_frames_changes_only_the_chosen_frames_and_keeps_their_geometry():
    images = np.zeros((40, 32, 32, 3), np.uint8)
    images[:, 8:16, 4:28] = (200, 60, 30)  # an orange bar
    out, chosen = recolour_frames(images, 0.5, seed=3)
    again, chosen_again = recolour_frames(images, 0.5, seed=3)
    assert np.array_equal(out, again) and np.array_equal(chosen, chosen_again)
    assert 10 <= chosen.sum() <= 30 and out.dtype == np.uint8 and out.shape == images.shape
    assert np.array_equal(out[~chosen], images[~chosen]) and not np.shares_memory(out, images)
    changed = [i for i in np.flatnonzero(chosen) if not np.array_equal(out[i], images[i])]
    assert len(changed) >= 0.8 * chosen.sum()
    for i in changed:  # the bar is where it was: brighter than the black around it
        assert out[i, 8:16, 4:28].astype(int).sum(2).min() > out[i, 20:, :].astype(int).sum(2).max()
    assert recolour_frames(images, 0.0)[1].sum() == 0 and recolour_frames(images, 1.0)[1].all()
    with pytest.raises(InputError, match="within"):
        recolour_frames(images, 1.5)


def test_best_window_is_on_the_object(trained):
    model, _, _, _ = trained
    images, boxes, labels = _scenes(12, 2, 3)
    with torch.no_grad():
        probs = model.window_probs(to_batch(list(images), SIZE))
    best = probs[..., -1].argmin(dim=1)  # the window least like background
    windows = model.windows[best] * 128
    centres = (windows[:, :2] + windows[:, 2:]) / 2
    inside = [bool((b[0, 0] - 8 <= c[0] <= b[0, 2] + 8) and (b[0, 1] - 8 <= c[1] <= b[0, 3] + 8))
              for c, (b, _) in zip(centres.numpy(), boxes)]
    assert np.mean(inside) >= 0.75, f"the surest window is on the object in {np.mean(inside):.2f} of the images"


def test_window_scores_equal_the_head_on_the_windows_mean_features():
    torch.manual_seed(1)
    model = RegionClassifier("efficientnet_lite0", 4, pretrained=False).eval()
    maps = torch.randn(2, model.features.out_dim, 5, 5)
    with torch.no_grad():
        logits = model.window_logits(maps, 160)
        some = torch.tensor([0, 17, len(model.windows) - 1])
        feats = region_means(maps, [model.windows[some] * 160] * 2, 160)
        direct = model.head(feats).reshape(2, len(some), -1)
    torch.testing.assert_close(logits[:, some], direct, rtol=1e-4, atol=1e-4)
    assert logits.shape == (2, len(model.windows), 5)  # four instruments and the background


def test_region_means_are_means_over_the_snapped_cells():
    torch.manual_seed(2)
    maps = torch.randn(1, 3, 4, 4)
    fine = torch.nn.functional.interpolate(maps, size=(GRID, GRID), mode="bilinear", align_corners=False)[0]
    boxes = torch.tensor([[0.0, 0.0, 100.0, 100.0], [10.0, 30.0, 42.0, 90.0], [99.0, 99.0, 99.5, 99.5]])
    got = region_means(maps, [boxes], 100)
    cells = [(0, 0, 20, 20), (2, 6, 8, 18), (19, 19, 20, 20)]  # boxes snapped to 5 px cells
    for k, (x1, y1, x2, y2) in enumerate(cells):
        torch.testing.assert_close(got[k], fine[:, y1:y2, x1:x2].mean(dim=(1, 2)), rtol=1e-4, atol=1e-5)


def test_window_grid_stays_inside_the_image_and_bounds_its_aspect():
    grid = window_grid((0.2, 0.5), 0.1, 2.0)
    w, h = grid[:, 2] - grid[:, 0], grid[:, 3] - grid[:, 1]
    assert (grid >= 0).all() and (grid <= 1 + 1e-6).all()
    assert float((torch.maximum(w / h, h / w)).max()) <= 2.0 + 1e-6
    assert {(round(float(a), 2), round(float(b), 2)) for a, b in zip(w, h)} == {(0.2, 0.2), (0.5, 0.5)}


def test_region_classifier_reloads_with_the_same_scores(trained, tmp_path):
    model, _, (images, _, _), _ = trained
    save_classifier(tmp_path / "c.pt", model, backbone="efficientnet_lite0", label_names=["a", "b", "c"],
                    input_size=SIZE)
    again, meta = load_classifier(tmp_path / "c.pt")
    assert isinstance(again, RegionClassifier) and meta["architecture"] == "regions"
    np.testing.assert_allclose(classify_images(again, list(images[:4]), input_size=SIZE),
                               classify_images(model, list(images[:4]), input_size=SIZE), atol=1e-5)


def test_frames_without_boxes_or_boxes_that_do_not_match_are_refused():
    images = np.zeros((2, 64, 64, 3), np.uint8)
    none = [(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))] * 2
    with pytest.raises(InputError, match="no training frame has one"):
        train_region_head(images, none, 2, input_size=64)
    with pytest.raises(InputError, match="boxes for 1"):
        train_region_head(images, none[:1], 2, input_size=64)


def test_region_setting_that_cannot_apply_is_a_config_problem():
    base = {"method": "halves", "init": "pretrained", "backbone": "efficientnet_lite0", "weights": "",
            "train": "head", "head": "linear", "regions": "boxes"}
    assert vision_problems(base) == []
    problems = vision_problems({**base, "head": "mlp"})
    assert len(problems) == 1 and "vision.regions: boxes" in problems[0] and "head mlp" in problems[0]
    assert vision_problems({**base, "head": "mlp", "regions": "auto"}) == []
