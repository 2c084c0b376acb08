"""BSS Eval scoring: matched by label, SDRi against the mixture, silent references skipped."""

import numpy as np
import pandas as pd

from avsep.evaluate import evaluate_mixture, summarize, summary_markdown


def _sources(n=16000, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(n).astype(np.float32) * 0.1, rng.standard_normal(n).astype(np.float32) * 0.1


def test_perfect_estimates_score_high_and_swapped_ones_low():
    a, b = _sources()
    mix = a + b
    noise = np.random.default_rng(5).standard_normal(len(a)).astype(np.float32) * 1e-3
    table = evaluate_mixture(
        "m0", mix, {"cello": a, "flute": b},
        {"good": {"cello": a + noise, "flute": b + noise}, "swapped": {"cello": b, "flute": a}},
        {"cello": "left", "flute": "right"},
    )
    good = table[table["method"] == "good"].set_index("instrument")
    assert (good["sdr"] > 30).all() and (good["sdri"] > 25).all()
    assert good.loc["cello", "position"] == "left"
    assert (table[table["method"] == "swapped"]["sdr"] < -10).all()
    base = table[table["method"] == "mixture"]
    np.testing.assert_allclose(base["sdri"], 0.0, atol=1e-9)


def test_silent_reference_is_skipped_and_counted():
    a, _ = _sources()
    silent = np.zeros_like(a)
    table = evaluate_mixture("m1", a, {"cello": a, "flute": silent}, {"x": {"cello": a, "flute": silent}})
    flute = table[table["instrument"] == "flute"]
    assert flute["silent_reference"].all() and flute["sdr"].isna().all()
    assert table[(table["instrument"] == "cello")]["sdr"].notna().all()
    per_method, _ = summarize(table, ["mixture", "x"])
    assert per_method.loc["x", "silent_skipped"] == 1 and per_method.loc["x", "sources"] == 1


def test_summary_markdown_lists_methods_in_order():
    a, b = _sources()
    table = pd.concat([
        evaluate_mixture(f"m{i}", a + b, {"cello": a, "flute": b}, {"irm": {"cello": a, "flute": b}})
        for i in range(2)
    ])
    per_method, per_inst = summarize(table, ["mixture", "irm"])
    assert list(per_method.index) == ["mixture", "irm"]
    text = summary_markdown(per_method, per_inst, n_mixtures=2)
    assert text.index("| mixture") < text.index("| irm") and "2 test mixtures" in text
