"""Pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", ECCV 2016)."""
from __future__ import annotations

import functools
from typing import Optional

import numpy as np
from scipy.ndimage import distance_transform_edt

from benchmark.core.maps import default_tolerance, to_image_size
from metrics import register
from metrics.base import LocalisationMetric


def reach(mask: np.ndarray, tolerance: float) -> np.ndarray:
    """(H, W) bool: pixels strictly closer than ``tolerance`` to a mask pixel (Euclidean distance
    between pixel indices); with ``tolerance`` ≤ 0, the mask itself. Every method and both
    pointing metrics score against the same regions, so each is computed once (and kept
    bit-packed: a run over large photos must not hold thousands of full masks)."""
    if tolerance <= 0:
        return mask
    size = mask.shape[0] * mask.shape[1]
    packed = _reach(np.packbits(mask).tobytes(), mask.shape, float(tolerance))
    return np.unpackbits(np.frombuffer(packed, np.uint8), count=size).reshape(
        mask.shape).astype(bool)


# every region of a 600-question run, bit-packed both ways (a 640 × 480 mask: 77 KB a pair)
@functools.lru_cache(maxsize=2560)
def _reach(packed: bytes, shape: tuple, tolerance: float) -> bytes:
    mask = np.unpackbits(np.frombuffer(packed, np.uint8), count=shape[0] * shape[1])
    return np.packbits(distance_transform_edt(~mask.reshape(shape).astype(bool))
                       < tolerance).tobytes()


def _hit_and_chance(heatmap, mask, tolerance: Optional[float]):
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return float("nan"), float("nan")
    tol = default_tolerance(min(mask.shape)) if tolerance is None else float(tolerance)
    near = reach(mask, tol)
    heat = to_image_size(heatmap, mask.shape)
    if not np.isfinite(heat).all():
        return 0.0, float(near.mean())
    py, px = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return float(near[py, px]), float(near.mean())


@register("pointing_game")
class PointingGame(LocalisationMetric):
    """1.0 when the map's maximum lands on (or near) the ground truth, else 0.0.

    TorchRay's rule: the map is upsampled bilinearly to the mask's size; the point is the *first*
    maximal pixel in row-major order; it is a hit when some ground-truth pixel lies *strictly*
    closer than ``tolerance`` pixels (Euclidean distance between pixel indices). ``tolerance``
    0 means the point must lie in the mask. How often the maximum is tied (and raster order
    decided) is reported beside it by the runner (``max_tied``).

    Edge cases: an empty mask → NaN (the sample is excluded); a map with any non-finite value →
    0.0, a miss (the engine counts these: see ``benchmark.engine.scoring``). ``tolerance`` defaults to
    TorchRay's 15 px scaled from a 224 px side to the mask's shorter side (6.43 px at 96 px).
    """

    non_finite = "miss"

    def __call__(self, heatmap, mask, tolerance: Optional[float] = None) -> float:
        return _hit_and_chance(heatmap, mask, tolerance)[0]


@register("pointing_game_above_chance")
class PointingGameAboveChance(LocalisationMetric):
    """The pointing game's hit minus the hit probability of a uniformly random point for this
    mask (the share of pixels within ``tolerance`` of it): 0 in expectation for a map that
    ignores the image, whatever the region's size, so regions of different sizes compare.
    In [−1, 1]; edge cases as :class:`PointingGame`."""

    non_finite = "miss"

    def __call__(self, heatmap, mask, tolerance: Optional[float] = None) -> float:
        hit, chance = _hit_and_chance(heatmap, mask, tolerance)
        return hit - chance
