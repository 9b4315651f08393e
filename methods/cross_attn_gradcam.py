"""PNP-VQA's heatmap: Grad-CAM on one cross-attention layer of the ITM text encoder."""
from __future__ import annotations

from typing import Sequence

import torch

from benchmark.models.protocol import VLModel
from methods import register
from methods._capture import capture, grads
from methods.base import (BLOCK, TARGET, Attribution, Explanation, question_mean,
                          question_tokens, target_score, to_grid)


@register("cross_attn_gradcam")
class CrossAttentionGradCAM(Attribution):
    r"""Cross-attention Grad-CAM as in PNP-VQA (Tiong et al., 2022) / LAVIS ``compute_gradcam``.

    With :math:`A \in \mathbb{R}^{H \times L \times (1+N)}` the text→image attention
    probabilities of cross-attention layer ``block`` (H heads, L text tokens, image CLS + N
    patches) and :math:`G = \partial y / \partial A` for the target :math:`y` (default: the raw
    ITM *match* logit), the map of text token :math:`t` over patch :math:`p` is

    .. math:: M_t(p) = \frac{1}{H} \sum_h A_{h,t,p} \, \max(G_{h,t,p}, 0)

    (image CLS column dropped, padded positions zeroed), and the returned map is the mean of
    :math:`M_t` over the model's question rows (``VLModel.cross_attention_rows``): for BLIP the
    real question tokens — every token except ``[ENC]`` and the final ``[SEP]``: LAVIS's second
    output row, the one PNP-VQA samples patches from; for BLIP-2 the Q-Former's query tokens,
    the only rows that attend to the image. Unlike LAVIS it
    works for any patch grid and head count, and it leaves the model as it found it. It reads
    the question as the model tokenises it, as every other method does: LAVIS's pretrained ITM
    adapters strip the "?" as PNP-VQA's ``forward_itm`` does
    (``BlipAdapter.strip_question_mark``), so that there it is not one of the averaged tokens.

    Question-token relevance (``Explanation.tokens``): each question token's Grad-CAM mass
    :math:`\sum_p M_t(p)` — LAVIS's per-token maps (its rows after the mean), summed over the
    patches; none where the rows are not text tokens (BLIP-2).

    Options:
        block: cross-attention layer (default: the model's ``default_block``; PNP-VQA uses 7 on
            BLIP's 12 layers). The last layer gives all-zero maps (only ``[ENC]`` reaches the head).
        target: ``"itm"`` (default), ``"itm_prob"`` or ``"answer"``.
    """
    per_sample = True
    block = BLOCK
    target = TARGET

    def attribute(self, model: VLModel, images: torch.Tensor,
                  questions: Sequence[str]) -> Explanation:
        block = model.default_block if self.block is None else self.block
        site = model.cross_attention_site(block)
        text = model.tokenize(questions)
        with capture(outputs={"cross": site}) as rec:
            score = target_score(model, model.visual_tokens(images), text, self.target)
            (grad,) = grads(score, [rec.last("cross")])
        attn = rec.last("cross").detach()
        cam = attn[..., 1:] * grad[..., 1:].clamp(min=0)  # (B, H, L, N)
        cam = cam.mean(1)  # heads
        return Explanation(to_grid(question_mean(cam, model, text), model.grid),
                           tokens=question_tokens(cam.sum(-1), model, text))
