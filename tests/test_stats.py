import itertools

import numpy as np
import pytest
from scipy.stats import rankdata

from benchmark.stats import bootstrap_ci, holm, paired_test


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
    assert shifted["p"] < 1e-6 and shifted["ci_low"] > 0.3
    same = paired_test(a, a)
    assert same["p"] == 1.0 and same["mean_diff"] == 0.0


def _signflip_p(d):
    """Two-sided exact Wilcoxon p by enumerating every sign pattern of the mid-ranks."""
    d = np.asarray([v for v in d if v != 0])
    r = rankdata(np.abs(d))
    observed = abs(r[d > 0].sum() - r.sum() / 2)
    stats = [abs(r[np.array(s, bool)].sum() - r.sum() / 2)
             for s in itertools.product([0, 1], repeat=len(d))]
    return np.mean(np.array(stats) >= observed - 1e-12)


@pytest.mark.parametrize("d", [
    [1, 1, -1, 0.5, 1, 1, 0.5],                # ties, few pairs: scipy would warn and approximate
    [0.3, -0.1, 0.7, 0.2, 0.9, 0, 0.4, -0.2],  # a zero difference is dropped
    [1.0] * 5 + [-1.0] * 2,
])
def test_paired_test_is_exact_on_small_samples_with_ties(d, recwarn):
    got = paired_test(d, [0.0] * len(d))["p"]
    assert got == pytest.approx(_signflip_p(d), abs=1e-12)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_exact_p_equals_scipy_exact_without_ties_up_to_fifty_pairs():
    from scipy.stats import wilcoxon

    d = np.random.default_rng(4).normal(0.3, 1, 40)  # continuous: no ties, no zeros
    ref = wilcoxon(d, method="exact").pvalue
    assert paired_test(d, np.zeros_like(d))["p"] == pytest.approx(ref, rel=1e-9)


def test_large_samples_use_the_tie_corrected_normal_approximation():
    from scipy.stats import wilcoxon

    d = np.random.default_rng(5).integers(-3, 5, 400).astype(float)  # many ties and zeros
    ref = wilcoxon(d, zero_method="wilcox", method="approx", correction=False).pvalue
    assert paired_test(d, np.zeros_like(d))["p"] == pytest.approx(ref, rel=1e-9)


def test_p_value_is_identical_across_calls_and_exact_with_ties_and_zeros():
    # 0/±1 pointing-game-like differences with zeros: once answered by an unseeded permutation
    d = np.array([1, 0, -1, 1, 1, 0, 1, -1, 1, 1, 0, 1, 1, -1, 1, 1, 1, 0, 1, 1], float)
    ps = {paired_test(d, np.zeros_like(d))["p"] for _ in range(5)}
    assert len(ps) == 1
    assert ps.pop() == pytest.approx(_signflip_p(d), abs=1e-12)  # 16 non-zero: enumerated


def test_curve_points_carry_the_seeded_bootstrap_ci_of_their_samples():
    from benchmark.aggregate import mean_curves

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
