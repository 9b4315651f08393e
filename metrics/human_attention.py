"""Agreement with human attention: the rank correlation of Das et al., "Human Attention in Visual
Question Answering: Do Humans and Deep Networks Look at the Same Regions?", EMNLP 2016."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

from metrics import register
from metrics.base import ReferenceMetric

#: the grid both maps are compared on (Das et al.: 14 × 14)
HUMAN_GRID = (14, 14)


def to_grid(heatmap, shape=HUMAN_GRID) -> np.ndarray:
    """A map resampled to ``shape``: bilinear with antialiasing, so that shrinking averages
    over each cell and enlarging interpolates."""
    t = torch.as_tensor(np.asarray(heatmap, dtype=np.float32))
    if tuple(t.shape) != tuple(shape):
        t = F.interpolate(t[None, None], size=tuple(shape), mode="bilinear",
                          align_corners=False, antialias=True)[0, 0]
    return t.double().numpy()


def rank_correlation(a, b) -> float:
    """Spearman's ρ between two maps on :data:`HUMAN_GRID` (scipy; ties get average ranks);
    NaN for a constant or non-finite map."""
    a, b = to_grid(a).ravel(), to_grid(b).ravel()
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or a.min() == a.max() \
            or b.min() == b.max():
        return float("nan")
    return float(spearmanr(a, b).correlation)


@register("human_rank_corr")
class HumanRankCorrelation(ReferenceMetric):
    """Spearman rank correlation between the map and the human attention map at 14 × 14.

    Both maps are resampled to 14 × 14 (:func:`to_grid`), their cells ranked, and Spearman's ρ
    taken (Das et al. 2016, who report an inter-human ρ of 0.623 on VQA-HAT val; the ``vqahat``
    dataset adds the run's own inter-human rows, model ``human``). The human map is the mean of
    the question's annotators' maps. Edge cases: a constant or non-finite
    map → NaN (no ranking).
    """

    reference = "human_map"

    def __call__(self, heatmap, reference) -> float:
        return rank_correlation(heatmap, reference)
