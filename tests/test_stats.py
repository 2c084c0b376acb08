"""Bootstrap intervals: they cover what they should, resample whole mixtures, and are seeded."""

import numpy as np
import pandas as pd
import pytest

from avsep.stats import bootstrap_interval, cluster_bootstrap, paired_difference


def test_cluster_bootstrap_resamples_mixtures_not_sources():
    # Two sources per mixture that always move together: the interval over mixtures is that
    # of 10 values, not of 20 independent ones, so it is wider than a per-source bootstrap.
    rng = np.random.default_rng(0)
    per_mixture = rng.normal(10, 3, 10)
    values = np.repeat(per_mixture, 2)
    clusters = np.repeat(np.arange(10), 2)
    mean, lo, hi = cluster_bootstrap(values, clusters)
    flat_lo, flat_hi = bootstrap_interval(values)
    assert mean == pytest.approx(per_mixture.mean())
    assert lo < mean < hi and (hi - lo) > 1.2 * (flat_hi - flat_lo)


def test_intervals_cover_the_true_mean_about_as_often_as_they_say():
    rng = np.random.default_rng(1)
    covered = 0
    for k in range(200):
        values = rng.normal(5.0, 2.0, 30)
        _, lo, hi = cluster_bootstrap(values, np.arange(30), n_boot=500, seed=k)
        covered += lo <= 5.0 <= hi
    assert 0.88 <= covered / 200 <= 0.99


def test_nans_are_dropped_one_cluster_is_a_point_and_seeds_repeat():
    assert cluster_bootstrap([1.0, np.nan, 3.0], ["a", "a", "b"]) == cluster_bootstrap([1.0, 3.0], ["a", "b"])
    assert cluster_bootstrap([2.0, 4.0], ["m", "m"]) == (3.0, 3.0, 3.0)
    assert all(np.isnan(cluster_bootstrap([np.nan], ["m"])))
    with pytest.raises(ValueError, match="2 values but 1 cluster"):
        cluster_bootstrap([1.0, 2.0], ["m"])


def test_paired_difference_pairs_sources_of_the_same_mixture():
    rows = [{"mix_id": f"m{k}", "instrument": inst, "method": method, "sdr": base + shift}
            for k, base in enumerate([0.0, 10.0, 20.0, 5.0]) for inst in ("a", "b")
            for method, shift in (("ref", 0.0), ("new", 0.5))]
    rows.append({"mix_id": "m9", "instrument": "a", "method": "new", "sdr": 99.0})  # no reference: not paired
    mean, lo, hi = paired_difference(pd.DataFrame(rows), "new", "ref")
    assert (mean, lo, hi) == pytest.approx((0.5, 0.5, 0.5))
    assert all(np.isnan(paired_difference(pd.DataFrame(rows), "new", "absent")))
