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


EXACT_MAX_N = 50  # exact null distribution up to 50 non-zero differences, normal beyond


def wilcoxon_p(d: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences ``d``; deterministic.

    Zero differences are dropped (Wilcoxon's rule); the rest are ranked by |d| with mid-ranks
    for ties. With at most :data:`EXACT_MAX_N` of them the p-value is exact: the null
    distribution of the positive rank sum over all 2^n equally likely sign patterns is built by
    convolution (mid-ranks are multiples of ½, so doubled ranks are integers), which stays exact
    with ties. Beyond, the normal approximation with the tie-corrected variance
    (n(n+1)(2n+1)/24 − Σ(t³ − t)/48) and no continuity correction, as scipy's ``approx``.
    1.0 when every difference is zero; NaN when there is none.
    """
    from scipy.stats import norm, rankdata

    d = np.asarray(d, dtype=np.float64)
    if d.size == 0:
        return float("nan")
    d = d[d != 0]
    n = d.size
    if n == 0:
        return 1.0
    ranks = rankdata(np.abs(d))
    w = float(ranks[d > 0].sum())
    if n <= EXACT_MAX_N:
        twice = np.rint(2 * ranks).astype(np.int64)
        dist = np.zeros(int(twice.sum()) + 1)
        dist[0] = 1.0
        for r in twice:  # each rank joins the positive sum or not, with probability 1/2
            shifted = np.zeros_like(dist)
            shifted[r:] = dist[:-r]
            dist = (dist + shifted) / 2
        k = int(round(2 * w))
        p = 2 * min(dist[:k + 1].sum(), dist[k:].sum())
        return float(min(1.0, p))
    _, counts = np.unique(ranks, return_counts=True)
    var = n * (n + 1) * (2 * n + 1) / 24 - (counts ** 3 - counts).sum() / 48
    if var <= 0:
        return 1.0
    z = (w - n * (n + 1) / 4) / np.sqrt(var)
    return float(min(1.0, 2 * norm.sf(abs(z))))


def paired_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> dict:
    """Mean difference a − b over pairs where both are finite, its bootstrap CI (seeded) and the
    two-sided Wilcoxon signed-rank p-value of :func:`wilcoxon_p` (no random draw anywhere)."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    d = x[keep] - y[keep]
    mean, lo, hi = bootstrap_ci(d.tolist(), seed=seed)
    return {"n": int(d.size), "mean_diff": mean, "ci_low": lo, "ci_high": hi, "p": wilcoxon_p(d)}
