"""LAVIS ``Blip2ITM`` (``blip2_image_text_matching``) behind the model protocol: the only file
that knows BLIP-2's module paths.

BLIP-2 reads the image through a Q-Former: Q learned query tokens self-attend together with the
question's tokens, and only the queries cross-attend to the frozen ViT's tokens (after
``ln_vision``), in every ``cross_attention_freq``-th layer. The match logit is the mean over the
queries of ``itm_head`` applied to each query's output. Mapped onto the protocol:

- :meth:`text_hidden` returns (B, 1 + Q + L, D): position 0 is the mean of the Q query outputs
  (``itm_head`` is linear, so the head of that mean is LAVIS's mean of the per-query logits),
  then the query outputs, then the text outputs;
- the ``text_cross`` sites are the Q-Former layers that have a cross-attention, (B, H, Q, 1+N);
  their question rows (:meth:`cross_attention_rows`) are all Q queries — the cross-attention
  Grad-CAM of BLIP-2 is the queries' attention to the patches weighted by the match logit's
  gradient, averaged over the queries;
- the ``text_self`` sites are every Q-Former layer's self-attention over queries and text,
  (B, H, Q+L, Q+L); ``vision`` sites are the EVA ViT's blocks.

Probabilities are the outputs of the dropout modules that receive them (LAVIS's EVA ``attn_drop``,
the Q-Former's ``self.dropout``), identical to them in eval mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from benchmark.models.protocol import Member, VLModel
from benchmark.models.tensors import TextBatch


@dataclass
class Blip2Adapter(VLModel):
    """A LAVIS ``Blip2ITM``: ``visual_encoder`` (EVA ViT) and ``ln_vision``, ``Qformer`` (its
    ``.bert`` with cross-attention), ``query_tokens``, ``itm_head``."""

    @property
    def tokenizer(self):
        return self.module.tokenizer

    @property
    def layers(self) -> List[nn.Module]:
        return list(self.module.Qformer.bert.encoder.layer)

    @property
    def n_queries(self) -> int:
        return self.module.query_tokens.shape[1]

    def tokenize(self, questions: Sequence[str]) -> TextBatch:
        """As ``Blip2ITM.forward``, padded to the longest question of the batch."""
        text = self.tokenizer(list(questions), padding="longest", truncation=True,
                              max_length=self.module.max_txt_len, return_tensors="pt")
        return TextBatch(text.input_ids, text.attention_mask).to(self.device)

    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        return self.module.ln_vision(self.module.visual_encoder(images))

    def text_hidden(self, image_embeds: torch.Tensor, text: TextBatch,
                    image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        b = image_embeds.shape[0]
        if image_atts is None:
            image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long,
                                    device=image_embeds.device)
        queries = self.module.query_tokens.expand(b, -1, -1)
        query_atts = torch.ones(queries.shape[:-1], dtype=text.attention_mask.dtype,
                                device=image_embeds.device)
        out = self.module.Qformer.bert(
            text.input_ids, query_embeds=queries,
            attention_mask=torch.cat([query_atts, text.attention_mask], dim=1),
            encoder_hidden_states=image_embeds, encoder_attention_mask=image_atts,
            return_dict=True).last_hidden_state
        return torch.cat([out[:, :self.n_queries].mean(1, keepdim=True), out], dim=1)

    def match_head(self, enc_hidden: torch.Tensor) -> torch.Tensor:
        return self.module.itm_head(enc_hidden)

    rows_are_tokens = False

    def cross_attention_rows(self, text: TextBatch) -> torch.Tensor:
        """Every query token (the only rows that cross-attend to the image)."""
        return torch.ones(text.input_ids.shape[0], self.n_queries, device=text.input_ids.device)

    def attention_sites(self, kind: str) -> List[nn.Module]:
        if kind == "vision":
            return [blk.attn.attn_drop for blk in self.module.visual_encoder.blocks]
        if kind == "text_self":
            return [layer.attention.self.dropout for layer in self.layers]
        if kind == "text_cross":
            return [layer.crossattention.self.dropout for layer in self.layers
                    if layer.has_cross_attention]
        if kind == "fusion":
            return []
        raise ValueError(f"unknown attention kind {kind!r}")

    def randomisation_stages(self) -> List[Tuple[str, List[Member]]]:
        """``heads`` (``itm_head``); ``qformer_layer_{i}`` from the last Q-Former layer to the
        first; ``qformer_embeddings`` (with the query tokens); ``ln_vision``; then the EVA ViT:
        ``vit_block_{i}`` from last to first, ``patch_embed`` (with the CLS token and position
        embeddings)."""
        m, vit = self.module, self.module.visual_encoder
        stages: List[Tuple[str, List[Member]]] = [("heads", [m.itm_head])]
        stages += [(f"qformer_layer_{i}", [self.layers[i]]) for i in reversed(range(len(self.layers)))]
        stages.append(("qformer_embeddings", [m.Qformer.bert.embeddings, m.query_tokens]))
        stages.append(("ln_vision", [m.ln_vision]))
        stages += [(f"vit_block_{i}", [vit.blocks[i]]) for i in reversed(range(len(vit.blocks)))]
        stages.append(("patch_embed", [vit.patch_embed, vit.cls_token]
                       + ([vit.pos_embed] if vit.pos_embed is not None else [])))
        return stages


def wrap_blip2(model: nn.Module, name: str = "blip2", default_block: Optional[int] = None,
               info: Optional[dict] = None) -> Blip2Adapter:
    """A LAVIS ``Blip2ITM`` behind the protocol: the EVA ViT's patch grid, BLIP's image
    normalisation at its input size (LAVIS's ``blip_image_eval``), and by default the
    cross-attention site at PNP-VQA's relative depth (7 of 12)."""
    from benchmark.models.blip import blip_preprocessing
    from benchmark.models.tensors import state_hash

    vit = model.visual_encoder
    grid = tuple(int(g) for g in vit.patch_embed.patch_shape)
    adapter = Blip2Adapter(model, name, grid, 0, blip_preprocessing(int(vit.image_size)), (),
                           info if info is not None else {"fingerprint": state_hash(model)})
    n_cross = len(adapter.attention_sites("text_cross"))
    adapter.default_block = default_block if default_block is not None else (7 * n_cross) // 12
    return adapter
