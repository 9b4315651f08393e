"""Gradient × input: the target's gradient w.r.t. the pixels, times the pixels, per patch."""
from typing import Sequence

import torch
import torch.nn.functional as F

from benchmark.models.protocol import VLModel
from methods import register
from methods._capture import capture, grads
from methods.base import TARGET, Attribution, target_score, to_grid


@register("gradient_x_input")
class GradientXInput(Attribution):
    """M(p) = sum over the pixels i of patch p and channels c of x_ci * dy/dx_ci (Shrikumar et
    al., 2016), y the ``target`` option (default: the match logit)."""
    per_sample = True
    target = TARGET

    def attribute(self, model: VLModel, images: torch.Tensor,
                  questions: Sequence[str]) -> torch.Tensor:
        text = model.tokenize(questions)
        with capture():  # enables gradients, even under torch.no_grad()
            x = images.detach().requires_grad_(True)
            (g,) = grads(target_score(model, model.visual_tokens(x), text, self.target), [x])
        ph, pw = images.shape[-2] // model.grid[0], images.shape[-1] // model.grid[1]
        pooled = F.avg_pool2d((g * x.detach()).sum(1, keepdim=True), (ph, pw)) * ph * pw
        return to_grid(pooled.flatten(1), model.grid)
