import numpy as np
import pytest

from benchmark.engine.stats import bootstrap_ci, holm, paired_test


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    x = np.random.default_rng(0).normal(1.0, 1.0, 200).tolist()
    a = bootstrap_ci(x, seed=3)
    assert a == bootstrap_ci(x, seed=3)
    mean, lo, hi = a
    assert lo < mean < hi and abs(mean - np.mean(x)) < 1e-12
    assert hi - lo == pytest.approx(2 * 1.96 * np.std(x) / np.sqrt(200), rel=0.2)


def test_bootstrap_ci_ignores_nan_and_handles_empty():
    assert bootstrap_ci([float("nan"), 2.0])[0] == 2.0
    assert all(np.isnan(v) for v in bootstrap_ci([float("nan")]))


def test_holm_matches_hand_computation():
    # sorted p: .01 (x3) .02 (x2) .04 (x1) -> .03 .04 .04 (monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_paired_test_detects_a_shift_and_not_noise():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, 100)
    shifted = paired_test(a + 0.5, a + rng.normal(0, 0.1, 100))
    assert shifted["p"] == 2 / 10000 and shifted["ci_low"] > 0.3  # the smallest a draw gives
    same = paired_test(a, a)
    assert same["p"] == 1.0 and same["mean_diff"] == 0.0


def _scipy_p(d, seed=1):
    from scipy.stats import permutation_test

    return permutation_test((np.asarray(d, float),), lambda x, axis: np.mean(x, axis=axis),
                            permutation_type="samples", vectorized=True, n_resamples=9999,
                            alternative="two-sided",
                            random_state=np.random.default_rng(seed)).pvalue


@pytest.mark.parametrize("d", [
    [1, 1, -1, 0.5, 1, 1, 0.5],                # ties, few pairs
    [0.3, -0.1, 0.7, 0.2, 0.9, 0, 0.4, -0.2],  # a zero difference
    [1.0] * 5 + [-1.0] * 2,
    list(np.random.default_rng(4).normal(0.3, 1, 13)),
])
def test_small_samples_are_exact_and_equal_scipys_permutation_test(d):
    """Up to 13 pairs every sign pattern is enumerated, as scipy does: the same p exactly."""
    assert paired_test(d, [0.0] * len(d))["p"] == pytest.approx(_scipy_p(d), abs=1e-12)


@pytest.mark.parametrize("n, shift", [(40, 0.3), (200, 0.1), (600, 0.0)])
def test_drawn_sign_patterns_agree_with_scipy_within_monte_carlo_error(n, shift):
    d = np.random.default_rng(n).normal(shift, 1, n)
    ours = paired_test(d, np.zeros_like(d))["p"]
    assert abs(ours - _scipy_p(d)) < 0.02 + 0.1 * ours


def test_p_value_is_identical_across_calls_and_test_orders():
    """Seeded: the same p whatever tests ran before (the drawn signs are shared rows of one
    seeded matrix, not a stream consumed in order)."""
    from benchmark.engine import stats

    d = np.random.default_rng(2).normal(0.1, 1, 300)
    first = paired_test(d, np.zeros_like(d))["p"]
    stats._DRAWN.clear()
    paired_test(np.ones(900), np.zeros(900))  # a wider draw first
    assert paired_test(d, np.zeros_like(d))["p"] == first


def test_direction_and_test_use_one_estimand():
    """Skewed differences whose mean favours b while most pairs favour a: the sentence's
    direction (the mean) and the p test the same mean — a rank test would call a the winner
    and be 'significant' in the mean's opposite direction."""
    d = np.array([0.05] * 9 + [-1.0] * 3)
    out = paired_test(d, np.zeros_like(d))
    assert out["mean_diff"] < 0 and out["p"] == pytest.approx(_scipy_p(d), abs=1e-12)


def test_curve_points_carry_the_seeded_bootstrap_ci_of_their_samples():
    from benchmark.engine.aggregate import mean_curves

    ys = np.random.default_rng(1).random((40, 3))
    ys[5, 1] = np.nan  # a sample without this point is left out of it, not of the others
    rows = [{"model": "m", "method": "a", "metric": "c", "curve": list(y), "curve_x": [0, .5, 1]}
            for y in ys]
    points = mean_curves(rows, seed=4)
    assert [p["x"] for p in points] == [0, .5, 1]
    for p, col in zip(points, ys.T):
        finite = col[np.isfinite(col)]
        assert (p["value"], p["ci_low"], p["ci_high"]) == bootstrap_ci(finite.tolist(), seed=4)
        assert p["n"] == finite.size and p["ci_low"] < p["value"] < p["ci_high"]
    assert [p["n"] for p in points] == [40, 39, 40]
    assert mean_curves(rows, seed=4) == points and mean_curves(rows, seed=5) != points
