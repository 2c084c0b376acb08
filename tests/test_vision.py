"""The halves method: recursive split, pooling, and loading local weights."""

import numpy as np
import pytest
import torch

from avsep.errors import InputError
from avsep.vision.classifier import build_classifier, load_classifier_weights
from avsep.vision.labels import FrameLabels, label_halves, pool_video_labels

NAMES = ["cello", "flute", "violin"]


def _fake_classifier(table):
    """A classifier that reads the colour of an image: each colour value stands for a
    probability row in ``table``."""
    def classify(images):
        return np.stack([table[int(img[0, 0, 0])] for img in images])
    return classify


def _frame(*colours):
    """A frame made of equal vertical strips, strip k filled with colours[k]."""
    strips = [np.full((4, 4, 3), c, np.uint8) for c in colours]
    return np.concatenate(strips, axis=1)


def test_different_halves_need_no_split():
    classify = _fake_classifier({0: [0.9, 0.05, 0.05], 1: [0.1, 0.8, 0.1]})
    out = label_halves(_frame(0, 0, 1, 1), classify, NAMES)
    assert (out.left, out.right, out.split) == ("cello", "flute", False)
    assert out.left_score == pytest.approx(0.9)


def test_same_label_splits_the_weaker_half_and_finds_the_other_instrument():
    # Both halves read "cello"; the right half is weaker, and its right quarter is a violin.
    table = {0: [0.95, 0.03, 0.02], 1: [0.9, 0.05, 0.05], 2: [0.2, 0.1, 0.7]}
    def classify(images):
        rows = []
        for img in images:
            colours = set(img[0, :, 0].tolist())
            rows.append(np.mean([table[c] for c in colours], axis=0) if len(colours) > 1 else table[colours.pop()])
        return np.stack(rows)
    out = label_halves(_frame(0, 0, 1, 2), classify, NAMES)
    assert (out.left, out.right, out.split) == ("cello", "violin", True)
    assert out.right_score == pytest.approx(0.7)


def test_when_quarters_agree_the_weaker_half_takes_its_second_label():
    table = {0: [0.9, 0.05, 0.05], 1: [0.5, 0.4, 0.1]}
    out = label_halves(_frame(0, 0, 1, 1), _fake_classifier(table), NAMES)
    assert (out.left, out.right) == ("cello", "flute") and out.split


def test_weaker_half_can_be_the_left_one():
    table = {0: [0.5, 0.1, 0.4], 1: [0.9, 0.05, 0.05]}
    out = label_halves(_frame(0, 0, 1, 1), _fake_classifier(table), NAMES)
    assert (out.left, out.right) == ("violin", "cello")


def test_pooling_votes_per_side():
    frames = [FrameLabels("cello", "flute", 0.9, 0.8, False)] * 3 + [FrameLabels("violin", "flute", 0.6, 0.7, True)]
    pooled = pool_video_labels(frames)
    assert pooled["left"]["instrument"] == "cello" and pooled["left"]["votes"] == 3
    assert pooled["right"]["instrument"] == "flute" and pooled["frames"] == 4
    assert pooled["left"]["score"] == pytest.approx(0.75 * 0.9)


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v3_small"])
def test_saved_weights_give_the_same_predictions(tmp_path, backbone):
    torch.manual_seed(0)
    model = build_classifier(backbone, 3).eval()
    torch.save(model.state_dict(), tmp_path / "w.pt")
    again = load_classifier_weights(build_classifier(backbone, 3), tmp_path / "w.pt").eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))


def test_imagenet_style_head_is_mapped_to_instruments(tmp_path):
    big = build_classifier("resnet18", 10).eval()
    torch.save({"state_dict": big.state_dict()}, tmp_path / "imagenet.pt")
    small = load_classifier_weights(build_classifier("resnet18", 3), tmp_path / "imagenet.pt",
                                    class_map=[7, 2, 5]).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(small(x), big(x)[:, [7, 2, 5]])


def test_wrong_path_and_class_count_fail_clearly(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_classifier_weights(build_classifier("resnet18", 3), tmp_path / "missing.pt")
    torch.save(build_classifier("resnet18", 5).state_dict(), tmp_path / "five.pt")
    with pytest.raises(InputError, match="5-class head, the dataset has 3 instruments"):
        load_classifier_weights(build_classifier("resnet18", 3), tmp_path / "five.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read"):
        load_classifier_weights(build_classifier("resnet18", 3), tmp_path / "junk.pt")
    torch.save(build_classifier("mobilenet_v3_small", 3).state_dict(), tmp_path / "other.pt")
    with pytest.raises(InputError, match="not a checkpoint of this backbone"):
        load_classifier_weights(build_classifier("resnet18", 3), tmp_path / "other.pt")


def _coloured_squares(n, seed):
    """Class k: a square of colour k at a random place on a noisy grey background."""
    rng = np.random.default_rng(seed)
    colours = np.array([[220, 30, 30], [30, 200, 40], [40, 60, 220]], np.uint8)
    images, labels = [], []
    for i in range(n):
        k = i % 3
        img = rng.integers(90, 160, (48, 48, 3)).astype(np.uint8)
        x, y = rng.integers(0, 24, 2)
        img[y : y + 24, x : x + 24] = colours[k]
        images.append(img)
        labels.append(k)
    return np.stack(images), np.array(labels)


def test_classifier_training_learns_and_is_reproducible():
    from avsep.vision.classifier import classify_images
    from avsep.vision.training import train_classifier

    train, val = _coloured_squares(60, 0), _coloured_squares(30, 1)
    kwargs = dict(backbone="resnet18", epochs=4, batch_size=16, lr=3e-3, input_size=48, seed=0, val=val)
    model, history = train_classifier(*train, 3, **kwargs)
    assert history[-1]["val_acc"] >= 0.9
    probs = classify_images(model, list(val[0]), input_size=48)
    assert probs.shape == (30, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    again, _ = train_classifier(*train, 3, **kwargs)
    np.testing.assert_array_equal(classify_images(again, list(val[0]), input_size=48), probs)


def test_pooling_never_names_one_instrument_on_both_sides():
    frames = [FrameLabels("cello", "flute", 0.9, 0.6, False), FrameLabels("cello", "cello", 0.9, 0.55, True),
              FrameLabels("cello", "cello", 0.9, 0.5, True)]
    pooled = pool_video_labels(frames)
    assert pooled["left"]["instrument"] == "cello" and pooled["right"]["instrument"] == "flute"


def test_present_instruments_keep_sure_ones_and_always_the_surest():
    from avsep.vision.labels import present_instruments

    scored = [{"instrument": "flute", "score": 0.9}, {"instrument": "cello", "score": 0.2}]
    assert present_instruments(scored, 0.5) == ["flute"]
    assert present_instruments(scored, 0.1) == ["cello", "flute"]
    assert present_instruments(scored, 0.95) == ["flute"]


def test_halves_record_names_sides_scores_and_evidence():
    from avsep.vision.labels import describe_halves

    frames = [FrameLabels("cello", "flute", 0.9, 0.8, False), FrameLabels("cello", "violin", 0.7, 0.3, True)]
    out = describe_halves("mix002", frames, [0, 4], np.arange(6) * 0.5, present_threshold=0.5)
    assert out["instruments"] == ["cello", "flute"] and out["positions"] == ["left", "right"]
    assert out["scores"] == [0.8, 0.4]  # votes fraction x mean probability
    assert out["present"] == ["cello"] and out["boxes"] == [None, None]
    assert out["frames"][1] == {"index": 4, "time": 2.0, "left": "cello", "right": "violin",
                                "left_score": 0.7, "right_score": 0.3, "split": True}


def _probs_frame(left, right, names=NAMES):
    """A frame whose halves have the class probabilities ``left`` and ``right``."""
    ln, rn = names[int(np.argmax(left))], names[int(np.argmax(right))]
    return FrameLabels(ln, rn, float(max(left)), float(max(right)), False, tuple(left), tuple(right))


def test_weak_evidence_is_flagged_uncertain_and_names_two_distinct_instruments():
    from avsep.vision.labels import describe_halves

    # Left is sure of cello; right wavers between flute and violin (mean 0.385 against
    # 0.365), and one frame votes cello on the right too.
    frames = [_probs_frame([0.9, 0.05, 0.05], [0.1, 0.47, 0.43]), _probs_frame([0.8, 0.1, 0.1], [0.4, 0.3, 0.3])]
    record = describe_halves("duet-00", frames, [0, 1], [0.0, 1.0], abstain_margin=0.1, label_names=NAMES)
    assert record["uncertain"] and "margin" in record["uncertain_reason"]
    assert record["instruments"] == ["cello", "flute"]  # pooled: cello 1.1, flute 0.46, violin 0.44
    assert record["margins"] == [pytest.approx(0.775), pytest.approx(0.02)]
    assert record["side_probs"]["right"]["flute"] == pytest.approx(0.385)
    sure = describe_halves("duet-00", frames, [0, 1], [0.0, 1.0], abstain_margin=0.0, label_names=NAMES)
    assert not sure["uncertain"] and sure["uncertain_reason"] == ""


def test_one_instrument_on_both_sides_falls_back_to_the_best_distinct_pair():
    from avsep.vision.labels import describe_halves

    # Only two classes, both halves sure of cello: the vote cannot give a runner-up.
    names = ["cello", "flute"]
    frames = [_probs_frame([0.9, 0.1], [0.7, 0.3], names)] * 3
    record = describe_halves("mix000", frames, [0, 1, 2], [0.0, 1.0, 2.0], abstain_margin=0.0, label_names=names)
    assert record["uncertain"] and record["uncertain_reason"] == "both sides voted for one instrument"
    assert record["instruments"] == ["cello", "flute"] and record["scores"] == [0.9, 0.3]


def test_known_labels_are_placed_on_the_sides_that_fit_them():
    from avsep.vision.labels import assign_known_labels, describe_halves

    # The vote says cello | flute, but the folder says violin_cello: vision only places them.
    frames = [_probs_frame([0.5, 0.3, 0.2], [0.3, 0.45, 0.25])] * 2
    record = describe_halves("duet-01", frames, [0, 1], [0.0, 1.0], label_names=NAMES)
    placed = assign_known_labels(record, ["violin", "cello"])
    assert placed["instruments"] == ["cello", "violin"] and placed["positions"] == ["left", "right"]
    assert placed["labels_from"] == "folder+vision" and placed["scores"] == [0.5, 0.25]
    swapped = [_probs_frame([0.2, 0.3, 0.5], [0.6, 0.3, 0.1])]
    record = describe_halves("duet-01", swapped, [0], [0.0], label_names=NAMES)
    assert assign_known_labels(record, ["cello", "violin"])["instruments"] == ["violin", "cello"]
    with pytest.raises(InputError, match="two different known instruments"):
        assign_known_labels(record, ["cello", "cello"])


def test_known_labels_follow_a_detector_record_without_probabilities():
    from avsep.vision.labels import assign_known_labels

    record = {"item": "duet-02", "instruments": ["flute", "cello"], "positions": ["left", "right"]}
    assert assign_known_labels(record, ["cello", "flute"])["instruments"] == ["flute", "cello"]
    record = {"item": "duet-02", "instruments": ["violin", "cello"], "positions": ["left", "right"]}
    assert assign_known_labels(record, ["cello", "flute"])["instruments"] == ["flute", "cello"]


def _tags(scores):
    ranked = sorted(scores, key=lambda k: -scores[k])
    return {"scores": scores, "ranked": ranked, "chunks": 2, "silent": False}


def test_audio_names_the_pair_that_vision_got_wrong_and_vision_places_it():
    from avsep.vision.labels import assign_audio_labels, describe_halves

    # A look vision has not seen: the right half's flute reads as violin (0.5 against 0.3),
    # while the audio hears cello and flute. Audio names the set, vision only the sides.
    frames = [_probs_frame([0.6, 0.1, 0.3], [0.2, 0.3, 0.5])] * 2
    record = describe_halves("mix003", frames, [0, 1], [0.0, 1.0], label_names=NAMES)
    assert record["instruments"] == ["cello", "violin"]
    placed = assign_audio_labels(record, _tags({"cello": 0.9, "flute": 0.4, "violin": 0.3}))
    assert placed["instruments"] == ["cello", "flute"] and placed["positions"] == ["left", "right"]
    assert placed["labels_from"] == "audio+vision" and placed["scores"] == [0.6, 0.3]
    assert placed["audio_pair"] == ["cello", "flute"] and placed["vision_pair"] == ["cello", "violin"]
    # Where audio and vision disagree, the record says so.
    assert placed["uncertain"] and placed["agrees_with_vision"] is False
    assert placed["uncertain_reason"] == "audio hears cello and flute; vision saw cello and violin"
    agreeing = assign_audio_labels(record, _tags({"violin": 0.9, "cello": 0.4, "flute": 0.3}))
    assert agreeing["instruments"] == ["cello", "violin"] and not agreeing["uncertain"]
    # The sides follow vision whichever order the audio ranks them in.
    placed = assign_audio_labels(record, _tags({"flute": 0.9, "cello": 0.4, "violin": 0.3}))
    assert placed["instruments"] == ["cello", "flute"]


def test_audio_that_hears_nothing_keeps_visions_labels_and_flags_them():
    from avsep.vision.labels import assign_audio_labels, describe_halves

    frames = [_probs_frame([0.6, 0.1, 0.3], [0.2, 0.3, 0.5])]
    record = describe_halves("mix004", frames, [0], [0.0], label_names=NAMES)
    silent = {"scores": dict.fromkeys(NAMES, 0.0), "ranked": [], "chunks": 0, "silent": True}
    placed = assign_audio_labels(record, silent)
    assert placed["instruments"] == record["instruments"] and placed["uncertain"]
    assert "audio hears" in placed["uncertain_reason"] and placed["labels_from"] == "audio+vision"
    # A detector record (no side probabilities) is placed by the instruments it did name.
    detector = {"item": "mix005", "instruments": ["flute", "violin"], "positions": ["left", "right"]}
    assert assign_audio_labels(detector, _tags({"cello": 0.8, "flute": 0.7, "violin": 0.1}))["instruments"] == [
        "flute", "cello"]


def test_each_label_choice_takes_the_set_from_its_own_source():
    from avsep.vision.labels import visible_from

    record = {"item": "duet-03", "instruments": ["cello", "violin"], "positions": ["left", "right"]}
    tags = _tags({"flute": 0.9, "cello": 0.5, "violin": 0.1})
    assert visible_from(record, "vision", ["flute", "violin"], tags) == (record, "vision")
    placed, source = visible_from(record, "folder+vision", ["flute", "violin"], tags)
    assert source == "folder+vision" and sorted(placed["instruments"]) == ["flute", "violin"]
    placed, source = visible_from(record, "audio+vision", ["flute", "violin"], tags)
    assert source == "audio+vision" and sorted(placed["instruments"]) == ["cello", "flute"]
    # folder+audio+vision: the folder where it names two instruments, else the audio.
    assert visible_from(record, "folder+audio+vision", ["flute", "violin"], tags)[1] == "folder+vision"
    placed, source = visible_from(record, "folder+audio+vision", [], tags)
    assert source == "audio+vision" and sorted(placed["instruments"]) == ["cello", "flute"]
    assert visible_from(record, "folder+vision", [], tags) == (record, "vision")
    with pytest.raises(InputError, match="needs the item's audio tags"):
        visible_from(record, "audio+vision", [], None)
    with pytest.raises(InputError, match="does not go through vision"):
        visible_from(record, "truth", [], tags)
