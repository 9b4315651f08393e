"""Statistics: seeded percentile bootstrap confidence intervals, the paired sign-flip
permutation test of a mean difference, and Holm's correction."""
from __future__ import annotations

import functools
import itertools
from typing import Sequence, Tuple

import numpy as np


def bootstrap_ci(values: Sequence[float], seed: int = 0, n_boot: int = 2000,
                 level: float = 0.95) -> Tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap CI of the mean over the finite values.

    NaNs are excluded first; no finite value → all NaN; one value → a zero-width interval.
    Deterministic for a given ``seed``.
    """
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    means = x[_resamples(seed, n_boot, x.size)].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return mean, float(lo), float(hi)


@functools.lru_cache(maxsize=32)
def _resamples(seed: int, n_boot: int, n: int) -> np.ndarray:
    """(n_boot, n) resample indices drawn from a fresh generator seeded ``seed``: the same for
    every call with these arguments, so a run's thousands of intervals over the same n draw
    them once."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    idx = idx.astype(np.int32)
    idx.flags.writeable = False
    return idx


def holm(pvalues: Sequence[float]) -> list:
    """Holm–Bonferroni adjusted p-values (monotone, capped at 1), in the input order; NaN stays."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


#: resamples of the sign-flip test beyond exact enumeration (scipy's default, 9999)
N_RESAMPLES = 9999


_DRAWN: dict = {}  # seed → (pairs, R) int8 signs, pair-major, grown as larger n arrive


def _signs(n: int, seed: int) -> np.ndarray:
    """(n, R) sign patterns, one column per pattern: all 2^n when 2^n ≤ :data:`N_RESAMPLES`
    (exact), else :data:`N_RESAMPLES` seeded draws — the first n rows of one seeded matrix,
    whatever other tests ran before (rows are drawn in order, so a wider draw starts with the
    same rows)."""
    if 2 ** n <= N_RESAMPLES:
        return np.array(list(itertools.product((1, -1), repeat=n)), np.int8).reshape(-1, n).T
    held = _DRAWN.get(seed)
    if held is None or held.shape[0] < n:
        held = _DRAWN[seed] = np.random.default_rng(seed).choice(
            np.array((-1, 1), np.int8), size=(max(n, 1024), N_RESAMPLES))
    return held[:n]


def sign_flip_p(d: Sequence[float], seed: int = 0) -> float:
    """Two-sided p-value of the paired permutation test of the mean difference: under the null
    each pair's difference is as likely negated, so the observed mean is compared with the means
    of ``d`` under every sign pattern (all 2^n when 2^n ≤ 9999) or 9999 seeded ones.
    p = min(1, 2·min(P(T ≤ t), P(T ≥ t))), with scipy's ``permutation_test`` conventions: +1 in
    numerator and denominator for drawn patterns, a relative tolerance of 100 ulp for ties (it
    equals scipy's exact p and agrees with its drawn p within Monte Carlo error, tested).
    1.0 when every difference is zero; NaN when there is none."""
    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    null = d @ _signs(d.size, seed) / d.size
    t = float(d.mean())
    gamma = abs(np.finfo(np.float64).eps * 100 * t)
    exact = 2 ** d.size <= N_RESAMPLES
    less = np.count_nonzero(null <= t + gamma) + (0 if exact else 1)
    greater = np.count_nonzero(null >= t - gamma) + (0 if exact else 1)
    total = len(null) + (0 if exact else 1)
    return float(min(1.0, 2 * min(less, greater) / total))


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict:
    """One estimand, the mean difference a − b over the pairs where both are finite: its value,
    its seeded percentile bootstrap CI and the two-sided p of the sign-flip permutation test of
    that mean (:func:`sign_flip_p`). The direction a sentence reads off the mean is the one the
    test tests."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    mean, lo, hi = bootstrap_ci(d.tolist(), seed=seed)
    return {"n": int(d.size), "mean_diff": mean, "ci_low": lo, "ci_high": hi,
            "p": sign_flip_p(d, seed)}
