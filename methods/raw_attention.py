"""The attention-only baseline: the cross-attention Grad-CAM reads, without its gradient."""
from __future__ import annotations

from typing import Sequence

import torch

from benchmark.models.protocol import VLModel
from methods import register
from methods._capture import capture
from methods.base import BLOCK, Attribution, Explanation, question_mean, question_tokens, to_grid


@register("raw_attention")
class RawCrossAttention(Attribution):
    r"""Raw cross-attention: the question rows of the text→image attention of layer ``block``.

    With :math:`A \in \mathbb{R}^{H \times L \times (1+N)}` the attention probabilities that
    :class:`~methods.cross_attn_gradcam.CrossAttentionGradCAM` weights by its gradient, the map
    over patch :math:`p` is :math:`\frac{1}{|Q|} \sum_{t \in Q} \frac{1}{H} \sum_h A_{h,t,p}`
    (image CLS column dropped; :math:`Q` the model's question rows,
    ``VLModel.cross_attention_rows``). It reads no gradient and no score, so it is the same map
    whatever is explained: a baseline that asks how much Grad-CAM's gradient adds to the
    attention it weights (Chefer et al. 2021 and Jain & Wallace 2019 use raw attention so).
    A baseline, never ranked: its tests against the methods are uncorrected and outside their
    Holm families, which therefore do not change when it is added.

    Question-token relevance (``Explanation.tokens``): the ``[ENC]`` row of the last text
    self-attention layer (heads averaged), the attention the match head's input pays each
    question token — the gradient-free counterpart of Chefer's :math:`R^{tt}` row.

    Options:
        block: cross-attention layer (default: the model's ``default_block``, the one
            ``cross_attn_gradcam`` reads).
    """

    per_sample = True
    is_baseline = True
    block = BLOCK

    def attribute(self, model: VLModel, images: torch.Tensor,
                  questions: Sequence[str]) -> Explanation:
        block = model.default_block if self.block is None else self.block
        text = model.tokenize(questions)
        sites = {"cross": model.cross_attention_site(block)}
        last_self = model.attention_sites("text_self")[-1:]
        sites.update({"self": last_self[0]} if last_self else {})
        with capture(outputs=sites) as rec, torch.no_grad():
            model.text_hidden(model.visual_tokens(images), text)
        attn = rec.last("cross")[..., 1:].mean(1)  # (B, L, N): heads averaged
        tokens = question_tokens(rec.last("self").mean(1)[:, 0], model, text) \
            if last_self else None
        return Explanation(to_grid(question_mean(attn, model, text), model.grid), tokens=tokens)
