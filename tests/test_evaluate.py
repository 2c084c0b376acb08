"""BSS Eval scoring: matched by label, SDRi against the mixture, silent references skipped."""

import numpy as np
import pandas as pd
import pytest

from avsep.evaluation.markdown import summary_markdown
from avsep.evaluation.matching import match_tracks, method_estimates
from avsep.evaluation.scores import evaluate_mixture
from avsep.evaluation.summary import summarize


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
    # SDRi is the gain over the mixture as the estimate, scored on its own by mir_eval.
    from avsep.evaluation.scores import bss_eval

    mixture_sdr, _, _ = bss_eval(np.stack([a, b]), np.stack([mix, mix]))
    np.testing.assert_allclose(good["sdri"].to_numpy(), good["sdr"].to_numpy() - mixture_sdr, atol=1e-6)


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


@pytest.mark.parametrize("seconds", [0.5, 3.0])
def test_shared_backend_equals_mir_eval(seconds):
    from avsep.bsseval import ReferenceProjector
    from avsep.evaluation.scores import bss_eval

    rng = np.random.default_rng(1)
    n = int(16000 * seconds)
    t = np.arange(n) / 16000
    refs = np.stack([np.sin(2 * np.pi * 330 * t) * (1 + 0.3 * rng.standard_normal(n)), 0.5 * rng.standard_normal(n)])
    projector = ReferenceProjector(refs)
    # Noisy, leaking, the mixture itself (SAR at the noise floor), shifted, nearly perfect
    # (ratios of 60 to 100 dB, where the energy differences lose digits), and one source
    # silenced.
    cases = [refs + 0.2 * rng.standard_normal(refs.shape), 0.7 * refs + 0.3 * refs[::-1],
             np.stack([refs.sum(0)] * 2), np.roll(refs, 7, axis=1),
             *(refs + level * rng.standard_normal(refs.shape) for level in (1e-3, 1e-4, 1e-5)),
             np.stack([refs[0], 1e-6 * rng.standard_normal(n)])]
    for est in cases:
        ours, theirs = np.array(projector.metrics(est)), np.array(bss_eval(refs, est))
        finite = theirs < 100  # above that, both are numerical noise floors
        np.testing.assert_allclose(ours[finite], theirs[finite], atol=1e-6)
        assert (ours[~finite] > 100).all()


def test_shared_backend_equals_mir_eval_on_tonal_references():
    # Harmonic references: their delayed copies are nearly dependent, the Gram system is
    # ill-conditioned, and the projections' energies must still be mir_eval's.
    from avsep.bsseval import ReferenceProjector
    from avsep.evaluation.scores import bss_eval

    rng = np.random.default_rng(3)
    t = np.arange(16000) / 16000
    refs = np.stack([sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6)) for f0 in (220.0, 311.0)])
    refs[1] += 1e-3 * rng.standard_normal(t.size)
    projector = ReferenceProjector(refs)
    for est in (refs + 0.05 * rng.standard_normal(refs.shape), 0.8 * refs + 0.2 * refs[::-1]):
        ours, theirs = np.array(projector.metrics(est)), np.array(bss_eval(refs, est))
        finite = theirs < 100
        np.testing.assert_allclose(ours[finite], theirs[finite], atol=1e-6)


def test_evaluate_mixture_backends_agree():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal(8000), rng.standard_normal(8000)
    stems = {"cello": a, "flute": b}
    est = {"x": {"cello": a + 0.1 * b, "flute": b + 0.2 * a}}
    one = evaluate_mixture("m", a + b, stems, est, backend="mir_eval")
    two = evaluate_mixture("m", a + b, stems, est, backend="shared")
    low = one["sar"] < 100
    np.testing.assert_allclose(one.loc[low, ["sdr", "sir", "sar", "sdri"]], two.loc[low, ["sdr", "sir", "sar", "sdri"]],
                               atol=1e-6)
    with pytest.raises(ValueError, match="backend must be one of"):
        evaluate_mixture("m", a + b, stems, est, backend="museval")


TRUTH = {"A": "left", "B": "right"}


@pytest.mark.parametrize("tracks, expected", [
    # wrong label on one side: A is still A's; B takes the track left over (X), not A's again
    ([("X", "left"), ("A", "right")], {"A": (1, "label"), "B": (0, "position")}),
    # both labels wrong: screen order, left to left
    ([("X", "left"), ("Y", "right")], {"A": (0, "position"), "B": (1, "position")}),
    # sides swapped but labels right: labels win over sides
    ([("B", "left"), ("A", "right")], {"A": (1, "label"), "B": (0, "label")}),
    # one instrument named twice: A takes the one on its side, B the other
    ([("A", "right"), ("A", "left")], {"A": (1, "label"), "B": (0, "position")}),
    # nothing separated
    ([], {"A": (None, "none"), "B": (None, "none")}),
    # one track for two sources
    ([("B", "left")], {"A": (None, "none"), "B": (0, "label")}),
])
def test_each_source_gets_one_track_and_each_track_serves_one_source(tracks, expected):
    got = match_tracks(TRUTH, tracks)
    assert got == expected
    used = [k for k, _ in got.values() if k is not None]
    assert len(used) == len(set(used))


def test_a_wrong_label_scores_the_displaced_source_against_the_other_track():
    """Truth A left, B right; vision says X left, A right. The old fallback scored B
    against A's track (the one on B's side) a second time and never scored X's track."""
    a, b = _sources()
    x = np.random.default_rng(9).standard_normal(len(a)).astype(np.float32) * 0.1
    mix = a + b
    estimates, matched = method_estimates(mix, TRUTH, [("X", "left", x), ("A", "right", a)])
    assert estimates["B"] is x and estimates["A"] is a
    table = evaluate_mixture("m", mix, {"A": a, "B": b}, {"v": estimates}, TRUTH, matched={"v": matched})
    rows = table[table["method"] == "v"].set_index("instrument")
    assert rows.loc["B", "matched_by"] == "position" and rows.loc["B", "matched_track"] == "X"
    assert rows.loc["A", "sdr"] > 30 and rows.loc["B", "sdr"] < 0  # X holds nothing of B


def test_a_failed_method_is_scored_as_the_mixture_and_counted():
    a, b = _sources()
    mix = a + b
    tables = []
    for k in range(2):
        estimates, matched = method_estimates(mix, TRUTH, [] if k == 0 else [("A", "left", a), ("B", "right", b)])
        tables.append(evaluate_mixture(f"m{k}", mix, {"A": a, "B": b}, {"v": estimates}, TRUTH, matched={"v": matched},
                                       failed={"v": "vision named one instrument"} if k == 0 else {}))
    table = pd.concat(tables)
    failed = table[(table["method"] == "v") & (table["mix_id"] == "m0")]
    np.testing.assert_allclose(failed["sdri"], 0.0, atol=1e-6)
    assert (failed["matched_by"] == "none").all() and (failed["failed"] == "vision named one instrument").all()
    per_method, _ = summarize(table, ["mixture", "v"])
    assert per_method.loc["v", "failed"] == 1 and per_method.loc["mixture", "failed"] == 0
    assert per_method.loc["v", "unmatched"] == 2


def test_summary_gives_intervals_and_paired_differences():
    rng = np.random.default_rng(0)
    rows = []
    for k in range(12):
        for inst in ("A", "B"):
            base = rng.normal(10, 3)
            for method, shift in (("oracle_nmf", 0.0), ("better", 1.0), ("same", 0.0)):
                sdr = base + shift + (rng.normal(0, 0.3) if method != "oracle_nmf" else 0.0)
                rows.append({"mix_id": f"m{k}", "method": method, "instrument": inst, "sdr": sdr, "sir": sdr,
                             "sar": sdr, "sdri": sdr - 2, "silent_reference": False})
    per_method, _ = summarize(pd.DataFrame(rows), ["oracle_nmf", "better", "same"])
    better, same = per_method.loc["better"], per_method.loc["same"]
    # Mixtures vary by some 3 dB: the mean's interval is wide ...
    assert better["sdr_lo"] < better["sdr_mean"] < better["sdr_hi"] and better["sdr_hi"] - better["sdr_lo"] > 1
    # ... but the paired difference sees the 1 dB gain, and no gain where there is none.
    assert 0.8 < better["sdr_diff_lo"] < 1.0 < better["sdr_diff_hi"] < 1.2
    assert same["sdr_diff_lo"] < 0 < same["sdr_diff_hi"]
    assert per_method.loc["oracle_nmf", "sdr_diff"] == 0
    again, _ = summarize(pd.DataFrame(rows), ["oracle_nmf", "better", "same"])
    pd.testing.assert_frame_equal(per_method, again)  # seeded
