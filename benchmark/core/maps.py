"""Map utilities the metrics and the dataset loaders share: resampling a heatmap, the pointing
tolerance, and the rank correlation of two maps on the human-attention grid."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr

#: the grid human attention maps are compared on (Das et al. 2016: 14 × 14)
HUMAN_GRID = (14, 14)


def to_image_size(heatmap, shape) -> np.ndarray:
    """Upsample a heatmap bilinearly (``align_corners=False``) to ``shape`` = (H, W), as float64."""
    t = torch.as_tensor(np.asarray(heatmap, dtype=np.float32))
    if tuple(t.shape) != tuple(shape):
        t = F.interpolate(t[None, None], size=tuple(shape), mode="bilinear",
                          align_corners=False)[0, 0]
    return t.double().numpy()


def to_human_grid(heatmap, shape=HUMAN_GRID) -> np.ndarray:
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
    a, b = to_human_grid(a).ravel(), to_human_grid(b).ravel()
    if not (np.isfinite(a).all() and np.isfinite(b).all()) or a.min() == a.max() \
            or b.min() == b.max():
        return float("nan")
    return float(spearmanr(a, b).correlation)


def default_tolerance(image_side: int, reference_side: int = 224, pixels: float = 15.0) -> float:
    """TorchRay's 15 px pointing tolerance, scaled from a 224 px side to this image's side."""
    return pixels * image_side / reference_side
