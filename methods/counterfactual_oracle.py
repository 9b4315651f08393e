"""The upper bracket of the counterfactual metrics: each object painted with its own effect."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.models.protocol import VLModel
from methods import register
from methods.base import Attribution
from benchmark.core.errors import NotApplicable

EPS = 1e-3  # keeps the least important object above the background


@register("counterfactual_oracle")
class CounterfactualOracle(Attribution):
    r"""Each object's pixels painted with its shifted effect per pixel,
    :math:`v_o = (\Delta_o - \min_{o'} \Delta_{o'} + \epsilon) / |o|`, background 0, pooled to
    the grid (mean over each patch's pixels). An object's share of the map's mass is then
    proportional to :math:`\Delta_o - \min \Delta + \epsilon`, which orders the objects as Δ
    does: the upper bracket of ``object_faithfulness`` (up to the bilinear upsampling at object
    borders). Its maximum lies on the object of the largest effect *per pixel*, not necessarily
    of the largest |Δ|, so it is no bracket for ``counterfactual_pointing``.

    Needs ``counterfactuals`` (per image: (object masks, Δ per object)), which the runner passes
    where the dataset can re-render scenes; not applicable otherwise.
    """
    per_sample = True
    needs = ("counterfactuals",)
    is_baseline = True

    def attribute(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                  counterfactuals=None) -> torch.Tensor:
        if counterfactuals is None or any(c is None for c in counterfactuals):
            raise NotApplicable("counterfactual_oracle needs scenes the dataset can re-render")
        maps = []
        for masks, deltas in counterfactuals:
            deltas = np.asarray(deltas, dtype=np.float64)
            paint = np.zeros(masks[0].shape, np.float64)
            for m, d in zip(masks, deltas - deltas.min() + EPS):
                paint[m] = d / m.sum()
            maps.append(F.adaptive_avg_pool2d(torch.from_numpy(paint)[None], model.grid)[0])
        return torch.stack(maps).float()
