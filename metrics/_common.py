"""Helpers shared by the metric families."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def to_image_size(heatmap, shape) -> np.ndarray:
    """Upsample a heatmap bilinearly (``align_corners=False``) to ``shape`` = (H, W), as float64."""
    t = torch.as_tensor(np.asarray(heatmap, dtype=np.float32))
    if tuple(t.shape) != tuple(shape):
        t = F.interpolate(t[None, None], size=tuple(shape), mode="bilinear",
                          align_corners=False)[0, 0]
    return t.double().numpy()


def default_tolerance(image_side: int, reference_side: int = 224, pixels: float = 15.0) -> float:
    """TorchRay's 15 px pointing tolerance, scaled from a 224 px side to this image's side."""
    return pixels * image_side / reference_side
