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
