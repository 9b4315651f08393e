"""Grad-CAM on the visual tokens the text encoder reads (fusion output, or the ViT output)."""
from __future__ import annotations

from typing import Sequence

import torch

from benchmark.models.protocol import VLModel
from methods import register
from methods._capture import capture, grads
from methods.base import TARGET, Attribution, target_score, to_grid


@register("fused_gradcam")
class FusedGradCAM(Attribution):
    r"""Grad-CAM (Selvaraju et al., ICCV 2017) on the visual token stream.

    With :math:`F \in \mathbb{R}^{N \times C}` the patch tokens the text encoder cross-attends to
    (the MultiLevelEncoder's output for a fused model, the ViT's final tokens for the baseline;
    image CLS excluded) and :math:`y` the target (default: the raw ITM match logit),

    .. math:: w_c = \frac{1}{N} \sum_p \frac{\partial y}{\partial F_{p,c}}, \qquad
              M(p) = \mathrm{ReLU}\Big(\sum_c w_c F_{p,c}\Big).

    Options: ``target`` (``"itm"``, ``"itm_prob"``, ``"answer"``).
    """
    per_sample = True
    target = TARGET

    def attribute(self, model: VLModel, images: torch.Tensor,
                  questions: Sequence[str]) -> torch.Tensor:
        text = model.tokenize(questions)
        with capture():
            tokens = model.visual_tokens(images)
            (grad,) = grads(target_score(model, tokens, text, self.target), [tokens])
        feats, g = tokens.detach()[:, 1:], grad[:, 1:]
        weights = g.mean(1, keepdim=True)  # (B, 1, C)
        return to_grid((feats * weights).sum(-1).clamp(min=0), model.grid)
