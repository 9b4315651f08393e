"""Sparseness: the Gini index of a map (Chalasani et al., ICML 2020; Quantus ``Sparseness``)."""
from __future__ import annotations

import numpy as np

from metrics import register
from metrics.base import ComplexityMetric


@register("sparseness")
class Sparseness(ComplexityMetric):
    r"""Gini index of the map's absolute values on the patch grid:

    .. math:: G = \frac{\sum_{i=1}^{N} (2i - N - 1)\, a_{(i)}}{N \sum_i a_{(i)}}

    with :math:`a_{(1)} \le \dots \le a_{(N)}` the sorted :math:`|a_i|` — 0 when every patch
    holds the same relevance, → 1 when one patch holds all of it. Quantus' ``Sparseness`` with
    its defaults (absolute values, scaled to a maximum of 1, 1e-7 added to every value; tested
    equal), except that each map is scaled by its own maximum: Quantus scales a batch by the
    batch's, so there a map's score depends on the maps beside it. Higher means more concentrated, which Chalasani et al. and Quantus
    count as better; it says nothing of *where* the relevance is. Edge cases: a non-finite map
    → NaN (excluded).
    """

    def __call__(self, heatmap) -> float:
        a = np.abs(np.asarray(heatmap, dtype=np.float64)).ravel()
        if not np.isfinite(a).all():
            return float("nan")
        # Quantus scales each map to a maximum of 1 before adding 1e-7 (only that order makes
        # the offset scale-free)
        a = np.sort(a / a.max() if a.max() > 0 else a) + 1e-7
        n = a.size
        return float(((2 * np.arange(1, n + 1) - n - 1) * a).sum() / (n * a.sum()))
