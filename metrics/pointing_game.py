"""Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016)."""
from __future__ import annotations

from typing import Optional

import numpy as np

from metrics import register
from metrics._common import default_tolerance, to_image_size


@register("pointing_game")
def pointing_game(heatmap, mask, tolerance: Optional[float] = None) -> float:
    """1.0 when the map's maximum lands on (or near) the ground truth, else 0.0.

    TorchRay's rule: the map is upsampled bilinearly to the mask's size; the point is the *first*
    maximal pixel in row-major order; it is a hit when some ground-truth pixel lies *strictly*
    closer than ``tolerance`` pixels (Euclidean distance between pixel indices).

    Edge cases: an empty mask → NaN (the sample is excluded); a map with any non-finite value →
    0.0, a miss (callers count these: see ``benchmark.runner``). ``tolerance`` defaults to
    TorchRay's 15 px scaled from a 224 px side to the mask's shorter side (6.43 px at 96 px).
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return float("nan")
    heat = to_image_size(heatmap, mask.shape)
    if not np.isfinite(heat).all():
        return 0.0
    tol = default_tolerance(min(mask.shape)) if tolerance is None else float(tolerance)
    py, px = np.unravel_index(int(np.argmax(heat)), heat.shape)
    ys, xs = np.nonzero(mask)
    return float(np.any((ys - py) ** 2 + (xs - px) ** 2 < tol * tol))
