"""Attention rollout through the visual encoder, conditioned on the question."""
from __future__ import annotations

from typing import List, Sequence

import torch

from benchmark.models.protocol import VLModel
from methods import register
from methods._capture import capture, sites
from methods.base import BLOCK, Attribution, question_mean, to_grid


def rollout_matrix(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    r"""Abnar & Zuidema (2020): :math:`R = \hat A_L \cdots \hat A_1`, with
    :math:`\hat A = \mathrm{rownorm}(\bar A + I)` and :math:`\bar A` the head mean.

    ``attentions``: per layer, first layer first, (B, H, S, S) probabilities. Returns (B, S, S).
    """
    b, _, s, _ = attentions[0].shape
    eye = torch.eye(s, dtype=attentions[0].dtype, device=attentions[0].device)
    r = eye.expand(b, s, s)
    for a in attentions:
        a_hat = a.mean(1) + eye
        r = (a_hat / a_hat.sum(-1, keepdim=True)) @ r
    return r


def identity(model: VLModel, b: int) -> torch.Tensor:
    """(B, 1+N, 1+N) identity: the image relevance of a model without ``vision`` sites (its
    image tokens are taken as their patches)."""
    n = 1 + model.grid[0] * model.grid[1]
    return torch.eye(n, device=model.device).expand(b, n, n)


def _rownorm(x: torch.Tensor) -> torch.Tensor:
    return x / x.sum(-1, keepdim=True).clamp(min=1e-12)


def fused_rollout(vit: torch.Tensor, pre_x: List[torch.Tensor], pre_y: List[torch.Tensor],
                  post: List[torch.Tensor]) -> torch.Tensor:
    r"""Rollout of the fused tokens over image patches, (B, 1+N, N) (row 0: the CLS slot).

    With :math:`V` the ViT rollout (patch rows and columns, renormalised), :math:`P_x, P_y` the
    rollouts of the pre-fusion layers of each stream (T repeats included), :math:`P_z` that of the
    post-fusion layers, the streams' mixing over image patches is :math:`X = P_x V` (visual
    stream) and :math:`Y = P_y` (the segmentation stream of patch *j* describes patch *j*). The
    fusion by addition averages them, :math:`Z = (X + Y)/2`, and the output residual
    :math:`z_L + x + y` gives :math:`O = (P_z Z + X + Y)/3`. The CLS slot keeps the ViT CLS row.
    """
    v_pp = _rownorm(vit[:, 1:, 1:])
    x = rollout_matrix(pre_x) @ v_pp if pre_x else v_pp
    y = rollout_matrix(pre_y) if pre_y else torch.eye(v_pp.shape[-1]).expand_as(v_pp)
    z = (x + y) / 2
    out = ((rollout_matrix(post) @ z if post else z) + x + y) / 3
    return torch.cat([_rownorm(vit[:, :1, 1:]), out], dim=1)


@register("rollout")
class AttentionRollout(Attribution):
    r"""Attention rollout (Abnar & Zuidema, ACL 2020) through the visual encoder, conditioned on
    the question by the text→image cross-attention of one text layer — by default PNP-VQA's
    Grad-CAM block, the layer ``cross_attn_gradcam`` reads. This is not Chefer et al.'s (ICCV
    2021) rollout baseline for bi-modal models, which rolls attention out through the text
    encoder's self- and cross-attention layers as well (their relevance rules are
    ``chefer_relevance``).

    .. math:: M(p) = \sum_{j} c_j \, R_{j, p}

    where :math:`R` (image tokens × patches) is the rollout of the visual encoder — for the
    baseline the ViT's :math:`\prod_l \mathrm{rownorm}(\bar A_l + I)`, for a fused model the
    composition through both streams, the T repeats and the addition (:func:`fused_rollout`) —
    and :math:`c` is the cross-attention of text layer ``block`` (default: the model's Grad-CAM
    block), averaged over heads and over the model's question rows (BLIP: the real question
    tokens, ``[ENC]`` and ``[SEP]`` excluded; BLIP-2: the query tokens). No gradients are used.

    Decoder-only models (LLaVA-class): the image tokens are part of the language model's
    sequence, so :math:`c` is the rollout through **every decoder layer**, restricted to the
    rows predicting the answer and the image-token columns (``VLModel.decoder_block``),
    averaged over the answer's rows; ``block`` is not used.
    """
    per_sample = True
    block = BLOCK

    def attribute(self, model: VLModel, images: torch.Tensor,
                  questions: Sequence[str]) -> torch.Tensor:
        block = model.default_block if self.block is None else self.block
        cross = {"cross": model.cross_attention_site(block)} if not model.decoder_only \
            else sites(model, "text_self", "self")
        text = model.tokenize(questions)
        vit_mods = sites(model, "vision", "vit")
        fusion_mods = sites(model, "fusion", "fusion")
        with capture(outputs={**vit_mods, **fusion_mods, **cross}) as rec, torch.no_grad():
            model.text_hidden(model.visual_tokens(images), text)
        vit = rollout_matrix(rec.all_last(vit_mods)) if vit_mods \
            else identity(model, images.shape[0])
        if fusion_mods:
            fusion = model.fusion_attention([rec.outputs[k] for k in fusion_mods])
            relevance = fused_rollout(vit, fusion.visual, fusion.side, fusion.fused)
        else:
            relevance = vit[:, :, 1:]
        if model.decoder_only:
            reads = model.decoder_block(rollout_matrix(rec.all_last(cross))[:, None])[:, 0]
        else:
            reads = rec.last("cross").mean(1)  # heads
        c = question_mean(reads, model, text)  # rows
        return to_grid(torch.einsum("bj,bjp->bp", c, relevance), model.grid)
