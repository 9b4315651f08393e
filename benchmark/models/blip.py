"""LAVIS ``BlipITM`` (and subclasses) behind the model protocol: the only file that knows BLIP's
module paths.

Tokenises like ``BlipITM.forward`` (first token replaced by ``[ENC]``), runs the ViT and the
cross-attending BERT, and exposes the attention probabilities as the outputs of their dropout
modules (the ViT's ``attn.attn_drop``, BERT's ``self.dropout``): identical to the
probabilities in eval mode, and the tensor LAVIS's ``save_attention`` records.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from benchmark.models.protocol import Member, VLModel
from benchmark.models.tensors import Preprocessing, TextBatch

#: BLIP's image normalisation (LAVIS's ``BlipImageBaseProcessor``)
BLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
BLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def with_blip_tokens(tokenizer):
    """A BERT tokenizer as LAVIS's ``BlipBase.init_tokenizer`` extends it: ``[DEC]`` as the bos
    token, ``[ENC]`` added (its id as ``enc_token_id``, the first token BlipITM reads)."""
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    tokenizer.enc_token_id = tokenizer.additional_special_tokens_ids[0]
    return tokenizer


def blip_preprocessing(image_size: int, resample: str = "bicubic") -> Preprocessing:
    """LAVIS's ``blip_image_eval`` processor: resize to ``image_size`` (bicubic), BLIP mean/std."""
    return Preprocessing(image_size, BLIP_MEAN, BLIP_STD, resample)


@dataclass
class BlipAdapter(VLModel):
    """A LAVIS ``BlipITM``: ``module.visual_encoder`` (ViT), ``module.text_encoder`` (BERT with
    cross-attention), ``module.itm_head`` and, on the suite's models, ``module.vqa_head``.

    ``strip_question_mark``: tokenise a question without its "?", as PNP-VQA's ``forward_itm``
    hands questions to LAVIS's ITM model — set for LAVIS's pretrained checkpoints, so that every
    method and metric reads the question as PNP-VQA's ITM stage does; the suite's tiny models,
    trained on questions with their "?", read them as trained."""

    strip_question_mark: bool = False

    @property
    def tokenizer(self):
        return self.module.tokenizer

    @property
    def vit(self) -> nn.Module:
        return self.module.visual_encoder

    @property
    def text_layers(self) -> List[nn.Module]:
        return list(self.module.text_encoder.encoder.layer)

    def tokenize(self, questions: Sequence[str]) -> TextBatch:
        """As ``BlipITM.forward``: longest padding, ``[ENC]`` as the first token."""
        if self.strip_question_mark:
            questions = [q.strip("?") for q in questions]
        text = self.tokenizer(list(questions), padding="longest", truncation=True,
                              max_length=self.module.max_txt_len, return_tensors="pt")
        ids = text.input_ids.clone()
        ids[:, 0] = self.tokenizer.enc_token_id
        return TextBatch(ids, text.attention_mask).to(self.device)

    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        return self.vit.forward_features(images)

    def text_hidden(self, image_embeds: torch.Tensor, text: TextBatch,
                    image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        if image_atts is None:
            image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long,
                                    device=image_embeds.device)
        out = self.module.text_encoder(text.input_ids, attention_mask=text.attention_mask,
                                       encoder_hidden_states=image_embeds,
                                       encoder_attention_mask=image_atts, return_dict=True)
        return out.last_hidden_state

    def match_head(self, enc_hidden: torch.Tensor) -> torch.Tensor:
        return self.module.itm_head(enc_hidden)

    def answer_head(self, enc_hidden: torch.Tensor) -> torch.Tensor:
        if not hasattr(self.module, "vqa_head"):
            return super().answer_head(enc_hidden)
        return self.module.vqa_head(enc_hidden)

    def text_embedding_site(self) -> nn.Module:
        return self.module.text_encoder.embeddings

    def attention_sites(self, kind: str) -> List[nn.Module]:
        if kind == "vision":
            return [blk.attn.attn_drop for blk in self.vit.blocks]
        if kind in ("text_self", "text_cross"):
            attr = "attention" if kind == "text_self" else "crossattention"
            return [getattr(layer, attr).self.dropout for layer in self.text_layers]
        if kind == "fusion":
            return []
        raise ValueError(f"unknown attention kind {kind!r}")

    def randomisation_stages(self) -> List[Tuple[str, List[Member]]]:
        """``heads`` (``itm_head``, ``vqa_head``); ``text_layer_{i}`` from the last BERT layer to
        the first; ``text_embeddings``; then :meth:`visual_stages`."""
        m = self.module
        stages: List[Tuple[str, List[Member]]] = [
            ("heads", [getattr(m, n) for n in ("itm_head", "vqa_head") if hasattr(m, n)])]
        layers = self.text_layers
        stages += [(f"text_layer_{i}", [layers[i]]) for i in reversed(range(len(layers)))]
        stages.append(("text_embeddings", [m.text_encoder.embeddings]))
        return stages + self.visual_stages(self.vit)

    @staticmethod
    def visual_stages(vit: nn.Module) -> List[Tuple[str, List[Member]]]:
        """``vit_norm`` (the final LayerNorm); ``vit_block_{i}`` from last to first;
        ``patch_embed`` (with the CLS token and position embeddings)."""
        stages: List[Tuple[str, List[Member]]] = [("vit_norm", [vit.norm])]
        stages += [(f"vit_block_{i}", [vit.blocks[i]]) for i in reversed(range(len(vit.blocks)))]
        stages.append(("patch_embed", [vit.patch_embed, vit.cls_token, vit.pos_embed]))
        return stages


def patch_grid(vit: nn.Module) -> Tuple[int, int]:
    """The patch grid of a LAVIS ViT (read from its ``patch_embed``)."""
    return tuple(int(g) for g in vit.patch_embed.grid_size)
