"""Relevance mass and relevance rank accuracy (Arras et al., "CLEVR-XAI", Information Fusion 2022)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from benchmark.core.maps import to_image_size
from metrics import register
from metrics.base import LocalisationMetric


@register("relevance_mass")
class RelevanceMass(LocalisationMetric):
    """Positive relevance inside the mask divided by the total positive relevance.

    The map is upsampled bilinearly to the mask's size and clamped at 0. Edge cases: empty mask
    → NaN (excluded); no positive relevance anywhere → NaN (the ratio is undefined); non-finite
    values in the map → NaN (the engine counts and reports non-finite maps).
    """

    def __call__(self, heatmap, mask, tolerance: Optional[float] = None) -> float:
        mask = np.asarray(mask, dtype=bool)
        heat = to_image_size(heatmap, mask.shape)
        if not mask.any() or not np.isfinite(heat).all():
            return float("nan")
        pos = np.clip(heat, 0, None)
        total = pos.sum()
        return float(pos[mask].sum() / total) if total > 0 else float("nan")


@register("relevance_rank")
class RelevanceRank(LocalisationMetric):
    """|top-K pixels ∩ mask| / K with K = the mask's size, ties credited by their expectation.

    Pixels are ranked by the upsampled map, descending. Pixels tied at the K-th value are not
    taken in raster order: the top K holds every pixel above that value and, of the m pixels
    equal to it, the K − (number above) still needed, drawn uniformly; the score counts their
    expected overlap with the mask (exact, no draw). A constant map therefore scores the mask's
    share of the image, as a uniformly random ranking does in expectation. Edge cases: empty
    mask → NaN; non-finite map → NaN.
    """

    def __call__(self, heatmap, mask, tolerance: Optional[float] = None) -> float:
        mask = np.asarray(mask, dtype=bool)
        heat = to_image_size(heatmap, mask.shape)
        k = int(mask.sum())
        if k == 0 or not np.isfinite(heat).all():
            return float("nan")
        flat, inside = heat.ravel(), mask.ravel()
        kth = np.partition(flat, flat.size - k)[flat.size - k]  # the K-th largest value
        above, tied = flat > kth, flat == kth
        need = k - int(above.sum())
        hits = inside[above].sum() + need * inside[tied].sum() / tied.sum()
        return float(hits / k)
