"""Chefer et al.'s generic relevance propagation for bi-modal transformers, on BLIP-ITM."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from benchmark.models.protocol import VLModel
from methods import register
from methods._capture import capture, grads, sites
from methods.rollout import identity
from methods.base import (TARGET, Attribution, Explanation, question_mean, question_tokens,
                          target_score, to_grid)

#: an attention-probability tensor (B, H, S_query, S_key) and the target's gradient w.r.t. it
AttentionGrad = Tuple[torch.Tensor, torch.Tensor]


class Relevance(NamedTuple):
    """The relevance matrices: text×text, image×image (CLS included), text×image."""

    tt: torch.Tensor  # (B, L, L)
    ii: torch.Tensor  # (B, 1+N, 1+N)
    ti: torch.Tensor  # (B, L, 1+N)


def head_mean(attn: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    r"""Eq. 5: :math:`\bar A = \mathbb{E}_h[(\nabla A \odot A)^+]` (clamped per head, then
    averaged over the heads)."""
    return (grad * attn).clamp(min=0).mean(1)


def normalise_residual(r: torch.Tensor) -> torch.Tensor:
    r"""Eqs. 8–9: :math:`\bar R = \mathrm{rownorm}(R - I) + I` (an all-zero row stays zero)."""
    eye = torch.eye(r.shape[-1], dtype=r.dtype, device=r.device)
    hat = r - eye
    sums = hat.sum(-1, keepdim=True)
    return torch.where(sums > 0, hat / sums.clamp(min=1e-12), torch.zeros_like(hat)) + eye


def propagate(image_layers: Sequence[AttentionGrad],
              text_layers: Sequence[Tuple[AttentionGrad, AttentionGrad]],
              text_mask: Optional[torch.Tensor] = None) -> Relevance:
    r"""Apply Chefer et al.'s rules to captured attention maps and their gradients.

    Args:
        image_layers: (A, G) of each image self-attention, in forward order, each (B, H, S, S)
            with S = 1 + N image tokens.
        text_layers: per text layer, in order, ``((A_self, G_self), (A_cross, G_cross))`` with
            shapes (B, H, L, L) and (B, H, L, S).
        text_mask: (B, L), 1 for real tokens; rows and columns of padding tokens of every text
            :math:`\bar A` are zeroed, so padding never contributes.

    Starting from :math:`R^{tt} = I, R^{ii} = I, R^{ti} = 0`: each image self-attention does
    :math:`R^{ii} \mathrel{+}= \bar A R^{ii}`; each text layer's self-attention does
    :math:`R^{tt} \mathrel{+}= \bar A R^{tt}`, :math:`R^{ti} \mathrel{+}= \bar A R^{ti}` (both
    from the pre-update matrices), then its cross-attention does
    :math:`R^{ti} \mathrel{+}= (\bar R^{tt})^\top \bar A \bar R^{ii}`.
    """
    cross = text_layers[0][1][0]  # (B, H, L, S): fixes batch, text and image sizes
    b, _, length, n_image = cross.shape
    opts = {"dtype": cross.dtype, "device": cross.device}
    r_tt = torch.eye(length, **opts).repeat(b, 1, 1)
    r_ii = torch.eye(n_image, **opts).repeat(b, 1, 1)
    r_ti = torch.zeros(b, length, n_image, **opts)
    keep = None if text_mask is None else text_mask.to(cross.dtype)
    for attn, grad in image_layers:
        r_ii = r_ii + head_mean(attn, grad) @ r_ii
    for (a_self, g_self), (a_cross, g_cross) in text_layers:
        self_bar = head_mean(a_self, g_self)
        cross_bar = head_mean(a_cross, g_cross)
        if keep is not None:
            self_bar = self_bar * keep[:, :, None] * keep[:, None, :]
            cross_bar = cross_bar * keep[:, :, None]
        r_tt, r_ti = r_tt + self_bar @ r_tt, r_ti + self_bar @ r_ti
        r_tt_bar = normalise_residual(r_tt).transpose(1, 2)
        r_ti = r_ti + r_tt_bar @ cross_bar @ normalise_residual(r_ii)
    return Relevance(r_tt, r_ii, r_ti)


def propagate_decoder(layers: Sequence[AttentionGrad]) -> torch.Tensor:
    r"""The self-attention rule through a decoder's layers, in forward order: from
    :math:`R = I`, :math:`R \mathrel{+}= \bar A R` (Eq. 6). Masked positions need no zeroing:
    no real row attends to them. Returns (B, T, T)."""
    attn = layers[0][0]
    b, _, t, _ = attn.shape
    r = torch.eye(t, dtype=attn.dtype, device=attn.device).repeat(b, 1, 1)
    for a, g in layers:
        r = r + head_mean(a, g) @ r
    return r


def _with_cls_slot(t: torch.Tensor) -> torch.Tensor:
    """(B, H, N, N) → (B, H, 1+N, 1+N) with a zero row and column for the image CLS slot."""
    return F.pad(t, (1, 0, 1, 0))


@register("chefer_relevance")
class CheferRelevance(Attribution):
    r"""Generic attention-model explainability (Chefer, Gur & Wolf, ICCV 2021) for BLIP-ITM.

    For every attention map :math:`A` (heads × queries × keys) with gradient
    :math:`\nabla A = \partial y / \partial A` of the target :math:`y` (default: the raw ITM
    match logit, :func:`methods.base.target_score`),
    :math:`\bar A = \mathbb{E}_h[(\nabla A \odot A)^+]` (Eq. 5). Relevance matrices start as
    :math:`R^{tt} = I` (text × text), :math:`R^{ii} = I` (image tokens, CLS included) and
    :math:`R^{ti} = 0` (text × image), and are updated in forward order:

    * image self-attention (every ViT block): :math:`R^{ii} \mathrel{+}= \bar A R^{ii}`
      (Eq. 6; Eq. 7's :math:`R^{it}` stays 0, the image never attends to the text);
    * each BERT layer's self-attention: :math:`R^{tt} \mathrel{+}= \bar A R^{tt}`,
      :math:`R^{ti} \mathrel{+}= \bar A R^{ti}` (Eqs. 6–7);
    * then its text→image cross-attention:
      :math:`R^{ti} \mathrel{+}= (\bar R^{tt})^\top \bar A \bar R^{ii}` (Eq. 10), with
      :math:`\bar R = \mathrm{rownorm}(R - I) + I` (Eqs. 8–9). Eq. 11,
      :math:`R^{tt} \mathrel{+}= \bar A R^{it}`, adds nothing because :math:`R^{it} = 0`: skipped.

    Padding tokens' rows and columns of every text :math:`\bar A` are zeroed. The map is row 0
    (``[ENC]``, the token the ITM head reads) of :math:`R^{ti}` over the patch columns (image CLS
    column dropped). Question-token relevance (``Explanation.tokens``): row 0 of :math:`R^{tt}`
    over the question tokens, Chefer et al.'s text relevance for the same output.

    Fused models (a MultiLevelEncoder after the ViT): its attention is further image
    self-attention, applied after the ViT's with the same rule to the patch tokens — the visual
    stream's pre-fusion calls (each of the ``T`` repeats of layers ``0 … Lf-1``), then the
    post-fusion layers ``Lf … N-1``. The image CLS slot is not part of the fusion encoder: its
    row and column of those :math:`\bar A` are zero, so it is carried through unchanged. The
    segmentation stream's calls are not image tokens and are not used; the stream addition and
    the output residual over the fusion are covered by the rule's identity term only.

    Decoder-only models (LLaVA-class, ``VLModel.decoder_only``): the image tokens are part of
    the language model's sequence, so its self-attention carries the rule
    (:func:`propagate_decoder`, every decoder layer); the map is that :math:`R`'s block from
    the rows predicting the answer to the image tokens, averaged over the answer's rows, then
    carried to the patches through the image encoder's :math:`\bar R^{ii}` as Eq. 10 does (the
    projector maps image token *j* to patch *j*). No question-token relevance.

    Options: ``target`` (``"itm"``, ``"itm_prob"``, ``"answer"``).
    """
    per_sample = True
    target = TARGET

    def applicable(self, model: VLModel) -> Optional[str]:
        if not (model.decoder_only or model.reads_first_row):
            return ("its map is the relevance row of [ENC], the one row a head reads; this "
                    "model's answer is read from every row (of the question, or of the queries)")
        if not model.decoder_only and \
                len(model.attention_sites("text_cross")) != len(model.attention_sites("text_self")):
            return ("its rules propagate through a cross-attention in every text layer (BLIP's "
                    "layout; BLIP-2's Q-Former has one every other layer)")
        return None

    def attribute(self, model: VLModel, images: torch.Tensor,
                  questions: Sequence[str]) -> Explanation:
        if model.decoder_only:
            return Explanation(self._decoder_map(model, images, questions))
        text = model.tokenize(questions)
        vit_mods = sites(model, "vision", "vit")
        fusion_mods = sites(model, "fusion", "fusion")
        self_mods = sites(model, "text_self", "self")
        cross_mods = sites(model, "text_cross", "cross")
        with capture(outputs={**vit_mods, **fusion_mods, **self_mods, **cross_mods}) as rec:
            score = target_score(model, model.visual_tokens(images), text, self.target)
            image_attn = rec.all_last(vit_mods)
            fused_attn: List[torch.Tensor] = []
            if fusion_mods:  # the image stream's calls, then the post-fusion layers
                fusion = model.fusion_attention([rec.outputs[k] for k in fusion_mods])
                fused_attn = fusion.visual + fusion.fused
            text_attn = list(zip(rec.all_last(self_mods), rec.all_last(cross_mods)))
            flat = image_attn + fused_attn + [t for pair in text_attn for t in pair]
            flat_grads = grads(score, flat)
        pairs = [(a.detach(), g) for a, g in zip(flat, flat_grads)]
        n_img = len(image_attn)
        n_fused = len(fused_attn)
        image_layers = pairs[:n_img] + [(_with_cls_slot(a), _with_cls_slot(g))
                                        for a, g in pairs[n_img:n_img + n_fused]]
        rest = pairs[n_img + n_fused:]
        text_layers = list(zip(rest[0::2], rest[1::2]))
        rel = propagate(image_layers, text_layers, text.attention_mask)
        return Explanation(to_grid(rel.ti[:, 0, 1:], model.grid),
                           tokens=question_tokens(rel.tt[:, 0], model, text))

    def _decoder_map(self, model: VLModel, images: torch.Tensor,
                     questions: Sequence[str]) -> torch.Tensor:
        text = model.tokenize(questions)
        vit_mods, self_mods = sites(model, "vision", "vit"), sites(model, "text_self", "self")
        with capture(outputs={**vit_mods, **self_mods}) as rec:
            score = target_score(model, model.visual_tokens(images), text, self.target)
            flat = rec.all_last(vit_mods) + rec.all_last(self_mods)
            pairs = [(a.detach(), g) for a, g in zip(flat, grads(score, flat))]
        r_ii = identity(model, len(questions)).to(pairs[0][0].dtype)
        for attn, grad in pairs[:len(vit_mods)]:
            r_ii = r_ii + head_mean(attn, grad) @ r_ii
        block = model.decoder_block(propagate_decoder(pairs[len(vit_mods):])[:, None])[:, 0]
        tokens = question_mean(block, model, text)  # (B, 1+N): the answer rows averaged
        patches = torch.einsum("bj,bjp->bp", tokens, normalise_residual(r_ii))
        return to_grid(patches[:, 1:], model.grid)
