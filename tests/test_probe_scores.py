"""The probe scored per input: audible clips only, right when it names the clip's instrument,
ordered from the solo clips to the mixtures."""

import numpy as np
import pandas as pd
import pytest

from avsep.probe.features import logmel_clips
from avsep.probe.predict import name_tracks, predict_clips
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


def test_accuracy_table_orders_inputs_and_gives_intervals():
    rows = [{"feature": "logmel", "probe": "linear", "input": inp, "item": f"{inp}{k}", "instrument": "a",
             "clip": 0, "predicted": "a" if k < right else "b", "correct": k < right}
            for inp, right in (("mixture", 5), ("irm", 9), ("solo", 10), ("miml_nmf", 7)) for k in range(10)]
    table = probe_accuracy_table(pd.DataFrame(rows), ["mixture", "irm", "oracle_nmf", "miml_nmf"])
    assert list(table["input"]) == ["solo", "irm", "miml_nmf", "mixture"]
    assert list(table["acc"]) == [1.0, 0.9, 0.7, 0.5]
    assert (table["acc_lo"] <= table["acc"]).all() and (table["acc"] <= table["acc_hi"]).all()
    assert input_order(["x", "mixture", "solo"], []) == ["solo", "mixture", "x"]
