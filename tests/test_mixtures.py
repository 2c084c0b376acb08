"""Mixture planning: held-out videos only, different instruments, deterministic."""

import pandas as pd
import pytest

from avsep.mixtures import MixtureError, plan_mixtures


def _manifest():
    rows = []
    for lab in ("cello", "flute", "violin", "trumpet"):
        for i in range(4):
            rows.append({"video_id": f"{lab}{i}", "kind": "solo", "labels": lab,
                         "split": "test" if i < 2 else "train", "duration": 20.0})
    rows.append({"video_id": "duet0", "kind": "duet", "labels": "cello,flute", "split": "test",
                 "duration": 20.0})
    return pd.DataFrame(rows)


def test_plan_uses_only_test_solos_of_different_instruments():
    manifest = _manifest()
    plan = plan_mixtures(manifest, count=12, seconds=5.0, seed=0, frame_fps=2.0)
    split = dict(zip(manifest["video_id"], manifest["split"]))
    assert len(plan) == 12 and plan["mix_id"].is_unique
    assert (plan["left_instrument"] != plan["right_instrument"]).all()
    for side in ("left", "right"):
        assert plan[f"{side}_video"].map(split).eq("test").all()
        assert not plan[f"{side}_video"].str.startswith("duet").any()
        assert (plan[f"{side}_start"] + 5.0 <= 20.0).all()
        assert ((plan[f"{side}_start"] * 2.0) % 1 == 0).all()  # on the frame grid
    pairs = {frozenset(p) for p in zip(plan["left_video"], plan["right_video"])}
    assert len(pairs) == 12
    # 6 instrument pairs, 12 mixtures: every instrument pair is used.
    assert len({frozenset(p) for p in zip(plan["left_instrument"], plan["right_instrument"])}) == 6


def test_plan_is_deterministic_per_seed():
    a = plan_mixtures(_manifest(), count=8, seconds=5.0, seed=7, frame_fps=1.0)
    b = plan_mixtures(_manifest(), count=8, seconds=5.0, seed=7, frame_fps=1.0)
    c = plan_mixtures(_manifest(), count=8, seconds=5.0, seed=8, frame_fps=1.0)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)


def test_plan_refuses_more_mixtures_than_pairs():
    # 4 instruments x 2 test videos: 6 instrument pairs x 4 video pairs = 24.
    with pytest.raises(MixtureError, match="mixtures.count=25, but the test split allows only 24"):
        plan_mixtures(_manifest(), count=25, seconds=5.0, seed=0, frame_fps=1.0)


def test_plan_skips_videos_shorter_than_the_clip():
    with pytest.raises(MixtureError, match="only 0 distinct pairs"):
        plan_mixtures(_manifest(), count=1, seconds=30.0, seed=0, frame_fps=1.0)
