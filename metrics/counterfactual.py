"""Counterfactual ground truth: does a map rank the objects as the model's own reliance on them?

The scene is re-rendered without one object at a time (synthetic data: exact, background and
every other object unchanged); the model's effect of object o is
:math:`\\Delta_o = f(x) - f(x_{\\setminus o})` on the ITM match logit (the quantity cross-attention
Grad-CAM explains). These metrics compare a map with the Δ of the *model that made it* and need
no human annotation. They do not escape the answer key on their own: a trained model relies
most on the question's objects (the task is built that way), so a map that is the target mask
and reads nothing of the model ranks objects well — measured on every trained tiny model, it
beat Grad-CAM on ``object_faithfulness``. The ``oracle`` and ``evidence_oracle`` rows show that
share; ``object_faithfulness_outside_target`` ranks only the objects the question does not name,
where the target mask gives every object the same share and scores 0.

Call shape (:class:`~metrics.base.CounterfactualMetric`): ``metric(heatmap, objects, deltas,
tolerance=None, targets=None)`` with ``objects`` a list of (H, W) bool masks, ``deltas`` the
matching effects and ``targets`` whether each object lies in the question's target region.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy.stats import spearmanr

from benchmark.core.maps import to_image_size
from metrics import register
from metrics.base import CounterfactualMetric
from metrics.pointing_game import PointingGame

MIN_OBJECTS = 3  # a rank correlation over two objects can only be ±1


def object_shares(heatmap, objects: Sequence[np.ndarray]) -> np.ndarray:
    """Each object's share of the map's positive mass (upsampled bilinearly); zeros for a map
    with no positive mass."""
    heat = np.clip(to_image_size(heatmap, objects[0].shape), 0, None)
    total = heat.sum()
    return np.array([heat[m].sum() / total if total > 0 else 0.0 for m in objects])


@register("object_faithfulness")
class ObjectFaithfulness(CounterfactualMetric):
    """Spearman ρ over the image's objects between each object's share of positive heatmap
    mass and its effect Δ_o on the match logit. Higher is better; 1 means the map orders the
    objects exactly as the model relies on them.

    Edge cases: fewer than 3 objects, or a model whose Δ_o are all equal → NaN (excluded); a
    map that gives every object the same share (e.g. all zero on objects) → 0, no information,
    as a random ordering scores in expectation; a constant map gives each object a share
    proportional to its area, so it scores ρ(area, Δ), not 0; non-finite map → NaN.
    """

    def __call__(self, heatmap, objects, deltas, tolerance: Optional[float] = None,
                 targets=None) -> float:
        deltas = np.asarray(deltas, dtype=np.float64)
        if len(objects) < MIN_OBJECTS or np.ptp(deltas) == 0:
            return float("nan")
        if not np.isfinite(np.asarray(heatmap, dtype=np.float64)).all():
            return float("nan")
        shares = object_shares(heatmap, objects)
        if np.ptp(shares) == 0:
            return 0.0
        return float(spearmanr(shares, deltas).statistic)


@register("counterfactual_pointing")
class CounterfactualPointing(CounterfactualMetric):
    """1 when the map's first maximum lies on (within ``tolerance`` of) the object with the
    largest |Δ_o| (the pointing game's rule, on that object's mask; objects tied for the
    largest |Δ_o| count together), else 0. NaN when every Δ_o is 0. Higher is better."""

    def __call__(self, heatmap, objects, deltas, tolerance: Optional[float] = None,
                 targets=None) -> float:
        size = np.abs(np.asarray(deltas, dtype=np.float64))
        if not len(objects) or size.max() == 0:
            return float("nan")
        mask = np.any([m for m, s in zip(objects, size) if s == size.max()], axis=0)
        return PointingGame()(heatmap, mask, tolerance=tolerance)


@register("object_faithfulness_outside_target")
class ObjectFaithfulnessOutsideTarget(CounterfactualMetric):
    """:class:`ObjectFaithfulness` over the objects outside the question's target only (at
    least 3 of them, else NaN): does the map rank the objects the question does not name as the
    model relies on them? Reliance there cannot be read off the answer key: the target mask
    (``oracle``) gives all of them the same share, 0, and scores 0 exactly; so does any map that
    only finds the question's objects. Chosen over a partial correlation controlling for target
    membership, whose score for the target mask is not 0 when the target has several objects of
    different areas. Higher is better; n is smaller (scenes with at least 3 non-target
    objects)."""

    def __call__(self, heatmap, objects, deltas, tolerance: Optional[float] = None,
                 targets=None) -> float:
        if targets is None:
            raise ValueError("object_faithfulness_outside_target needs targets (per object: "
                             "whether it lies in the target region)")
        keep = [i for i, t in enumerate(targets) if not t]
        return ObjectFaithfulness()(heatmap, [objects[i] for i in keep],
                                    [deltas[i] for i in keep])
