"""Statistics for the summary: seeded percentile bootstrap confidence intervals."""
from __future__ import annotations

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
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return mean, float(lo), float(hi)


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


EXACT_MAX_N = 13  # 2**13 sign patterns fit in scipy's default 9999 permutations: enumerated


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict:
    """Mean difference a − b over pairs where both are finite, its bootstrap CI and the
    two-sided Wilcoxon signed-rank p-value (1.0 when every difference is zero).

    Zero differences are dropped (Wilcoxon's rule). With at most ``EXACT_MAX_N`` non-zero
    differences the p-value is exact: every sign pattern of the (mid-)ranks is enumerated, which
    stays valid with ties, where the normal approximation is poor for so few pairs.
    """
    from scipy.stats import PermutationMethod, wilcoxon

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    mean, lo, hi = bootstrap_ci(d.tolist(), seed=seed)
    if d.size == 0:
        p = float("nan")
    elif not np.any(d != 0):
        p = 1.0
    else:
        small = np.count_nonzero(d) <= EXACT_MAX_N
        p = float(wilcoxon(d, zero_method="wilcox", alternative="two-sided",
                           method=PermutationMethod() if small else "auto").pvalue)
    return {"n": int(d.size), "mean_diff": mean, "ci_low": lo, "ci_high": hi, "p": p}
