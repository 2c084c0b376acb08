"""The probe scored per input: audible clips only, right when it names the clip's instrument,
ordered from the solo clips to the mixtures."""

import numpy as np
import pandas as pd
import pytest

from avsep.probe.features import logmel_clips
from avsep.errors import InputError
from avsep.files import write_table
from avsep.probe import predict as predict_module
from avsep.probe.predict import name_tracks, predict_clips, read_predictions
from avsep.probe.scores import input_order, probe_accuracy_table
from avsep.probe.train import train_probe

SR = 11025


def _tone(f0, seconds, rng, bright):
    t = np.arange(int(seconds * SR)) / SR
    wave = sum((bright ** k) * np.sin(2 * np.pi * f0 * (k + 1) * t + rng.uniform(0, 6)) for k in range(8))
    return (0.1 * wave / np.abs(wave).max()).astype(np.float32)


@pytest.fixture(scope="module")
def probe():
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X, y = [], []
    for name, bright in (("dark", 0.2), ("bright", 0.95)):
        for _ in range(8):
            X.append(logmel_clips(_tone(rng.uniform(150, 400), 2.0, rng, bright), SR, seconds=1.0))
            y += [name] * 2
    X = np.concatenate(X)
    return train_probe(X[::2], y[::2], X[1::2], y[1::2], kind="linear", max_epochs=400, patience=400, lr=1e-2,
                       feature_params={"sample_rate": SR, "clip_seconds": 1.0})


def test_tracks_are_named_per_clip_and_silent_references_are_left_out(probe):
    rng = np.random.default_rng(5)
    dark, bright = _tone(200, 2.0, rng, 0.2), _tone(300, 2.0, rng, 0.95)
    half_silent = np.concatenate([np.zeros(SR, np.float32), dark[SR:]])
    tracks = [("solo", "v1", "dark", dark, None), ("solo", "v2", "bright", bright, None),
              ("m", "mix0", "dark", dark + bright, half_silent)]  # its first second holds no dark
    table = predict_clips({"logmel_linear": probe}, tracks, SR, silence_db=-60.0)
    assert list(table.groupby("item").size().loc[["v1", "v2", "mix0"]]) == [2, 2, 1]
    solo = table[table["input"] == "solo"]
    assert solo["correct"].all() and (solo["predicted"] == solo["instrument"]).all()
    assert name_tracks(probe, {"a": dark, "b": bright}, SR) == {"a": "dark", "b": "bright"}
    with pytest.raises(Exception, match="Hz"):
        name_tracks(probe, {"a": dark}, SR * 2)


def test_a_track_given_twice_is_featurized_once_and_labelled_the_same(probe, monkeypatch):
    """The probe report's mixture comes once per instrument, and methods often give the same
    track: its features are computed once, and each copy still gets its own audible clips."""
    rng = np.random.default_rng(6)
    dark, bright = _tone(210, 2.0, rng, 0.2), _tone(310, 2.0, rng, 0.95)
    mixture = dark + bright
    tracks = [("mixture", "mix0", "dark", mixture, dark),
              ("mixture", "mix0", "bright", mixture, np.concatenate([np.zeros(SR, np.float32), bright[SR:]])),
              ("a", "mix0", "dark", dark.copy(), dark), ("b", "mix0", "dark", dark.copy(), dark)]
    once = pd.concat([predict_clips({"logmel_linear": probe}, [t], SR, silence_db=-60.0) for t in tracks],
                     ignore_index=True)
    calls = []
    original = predict_module.track_features
    monkeypatch.setattr(predict_module, "track_features", lambda *a, **k: calls.append(1) or original(*a, **k))
    together = predict_clips({"logmel_linear": probe}, tracks, SR, silence_db=-60.0)
    assert len(calls) == 2  # the mixture and the dark track, each once
    pd.testing.assert_frame_equal(together, once)
    assert list(together.groupby("input", sort=False).size()) == [3, 2, 2]  # the silent second left out


def test_prediction_tables_read_back_with_their_types(tmp_path):
    table = pd.DataFrame([{"feature": "logmel", "probe": "linear", "input": "solo", "item": "007", "instrument": "cello",
                           "clip": 3, "predicted": "nan", "correct": False},
                          {"feature": "miml", "probe": "mlp", "input": "miml_nmf", "item": "mix01", "instrument": "flute",
                           "clip": 0, "predicted": "flute", "correct": True}])
    write_table(tmp_path / "p.tsv", table)
    pd.testing.assert_frame_equal(read_predictions(tmp_path / "p.tsv"), table)
    (tmp_path / "bad.tsv").write_text("feature\tprobe\nlogmel\tlinear\n")
    with pytest.raises(InputError, match="expected the columns"):
        read_predictions(tmp_path / "bad.tsv")


def test_accuracy_table_orders_inputs_and_gives_intervals():
    rows = [{"feature": "logmel", "probe": "linear", "input": inp, "item": f"{inp}{k}", "instrument": "a",
             "clip": 0, "predicted": "a" if k < right else "b", "correct": k < right}
            for inp, right in (("mixture", 5), ("irm", 9), ("solo", 10), ("miml_nmf", 7)) for k in range(10)]
    table = probe_accuracy_table(pd.DataFrame(rows), ["mixture", "irm", "oracle_nmf", "miml_nmf"])
    assert list(table["input"]) == ["solo", "irm", "miml_nmf", "mixture"]
    assert list(table["acc"]) == [1.0, 0.9, 0.7, 0.5]
    assert (table["acc_lo"] <= table["acc"]).all() and (table["acc"] <= table["acc_hi"]).all()
    assert input_order(["x", "mixture", "solo"], []) == ["solo", "mixture", "x"]
