"""Curve helpers shared by deletion/insertion and VQA-vs-kept-fraction metrics."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def auc(curve: Sequence[float]) -> float:
    """Normalised trapezoid area of ``S + 1`` equally spaced points on [0, 1].

    With ``y_0 … y_S`` in [0, 1] the result is ``Σ (y_i + y_{i+1}) / (2S)``, in [0, 1]; a single
    point returns itself; NaN anywhere → NaN.
    """
    y = np.asarray(curve, dtype=np.float64)
    if y.size == 0:
        raise ValueError("auc of an empty curve")
    if y.size == 1:
        return float(y[0])
    return float(((y[:-1] + y[1:]) / 2).sum() / (y.size - 1))
