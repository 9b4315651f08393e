"""Integrated Gradients on the pixels, via captum, pooled to the patch grid."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from benchmark.models.adapter import ITMAdapter, TextBatch
from methods import register
from methods.base import Attribution, to_grid


def match_probability_fn(model: ITMAdapter):
    """forward(images, input_ids, attention_mask[, segmentation]) → (B,) match probability.

    Text (and a fused model's segmentation stream) travel as tensors so that captum repeats them
    with the interpolated images (captum does not repeat Python lists).
    """

    def forward(images, input_ids, attention_mask, segmentation=None):
        with model.bind(segmentation=segmentation):
            return model.match_probability(images, TextBatch(input_ids, attention_mask))

    return forward


@register("integrated_gradients")
class IntegratedGradientsMap(Attribution):
    r"""Integrated Gradients (Sundararajan et al., ICML 2017) with captum, target = the ITM match
    probability :math:`f`:

    .. math:: \mathrm{IG}_i(x) = (x_i - x'_i) \int_0^1
              \frac{\partial f(x' + \alpha (x - x'))}{\partial x_i} \, d\alpha

    (captum's Gauss–Legendre rule with ``n_steps`` points), summed over colour channels and over the
    pixels of each patch: :math:`M(p) = \sum_{i \in p} \mathrm{IG}_i` (signed; positive supports
    the match). Completeness says :math:`\sum_i \mathrm{IG}_i = f(x) - f(x')`; captum's
    convergence delta (the per-sample gap) is kept in ``last_extras["completeness_delta"]`` and
    reported by the runner.

    Keyword args: ``n_steps`` (32), ``baseline`` (``"zero"`` — zeros in normalised space, the
    dataset mean image — or ``"black"``), ``internal_batch_size`` (default: all steps at once).
    """

    def __init__(self) -> None:
        self.last_extras: dict = {}

    def attribute(self, model: ITMAdapter, images: torch.Tensor, questions: Sequence[str],
                  n_steps: int = 32, baseline: str = "zero",
                  internal_batch_size: Optional[int] = None, **_: object) -> torch.Tensor:
        from captum.attr import IntegratedGradients

        text = model.tokenize(questions)
        seg = model.bound("segmentation", images.shape[0])
        args = (text.input_ids, text.attention_mask) + ((seg,) if seg is not None else ())
        base = _baseline(images, baseline)
        ig = IntegratedGradients(match_probability_fn(model))
        attr, delta = ig.attribute(images, baselines=base, additional_forward_args=args,
                                   n_steps=n_steps, internal_batch_size=internal_batch_size,
                                   return_convergence_delta=True)
        self.last_extras = {"completeness_delta": delta.detach().abs().cpu()}
        patch = images.shape[-1] // model.grid[1]
        pooled = F.avg_pool2d(attr.sum(1, keepdim=True), patch) * patch * patch
        return to_grid(pooled.flatten(1), model.grid)


def _baseline(images: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "zero":
        return torch.zeros_like(images)
    if kind == "black":
        from benchmark.models.tiny import normalise

        black = torch.zeros(1, images.shape[2], images.shape[3], 3, dtype=torch.uint8)
        return normalise(black).to(images).expand_as(images)
    raise ValueError(f"unknown IG baseline {kind!r}; use zero or black")
