"""Relevance mass and relevance rank accuracy (Arras et al., "CLEVR-XAI", Information Fusion 2022)."""
from __future__ import annotations

import numpy as np

from metrics import register
from metrics._common import to_image_size


@register("relevance_mass")
def relevance_mass(heatmap, mask) -> float:
    """Positive relevance inside the mask divided by the total positive relevance.

    The map is upsampled bilinearly to the mask's size and clamped at 0. Edge cases: empty mask
    → NaN (excluded); no positive relevance anywhere → NaN (the ratio is undefined); non-finite
    values in the map → NaN (callers count and report non-finite maps).
    """
    mask = np.asarray(mask, dtype=bool)
    heat = to_image_size(heatmap, mask.shape)
    if not mask.any() or not np.isfinite(heat).all():
        return float("nan")
    pos = np.clip(heat, 0, None)
    total = pos.sum()
    return float(pos[mask].sum() / total) if total > 0 else float("nan")


@register("relevance_rank")
def relevance_rank(heatmap, mask) -> float:
    """|top-K pixels ∩ mask| / K with K = the mask's size.

    Pixels are ranked by the upsampled map, descending, with a stable sort (ties keep row-major
    order). Edge cases: empty mask → NaN; non-finite map → NaN.
    """
    mask = np.asarray(mask, dtype=bool)
    heat = to_image_size(heatmap, mask.shape)
    k = int(mask.sum())
    if k == 0 or not np.isfinite(heat).all():
        return float("nan")
    top = np.argsort(-heat.ravel(), kind="stable")[:k]
    return float(mask.ravel()[top].sum() / k)
