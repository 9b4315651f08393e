"""Hugging Face ``transformers``' ``BlipForQuestionAnswering`` behind the model protocol, loaded
from a local folder: ``--models hf-blip-vqa:PATH``.

``PATH`` is what ``save_pretrained`` writes (``config.json``, the weights) with the tokenizer
files beside them and optionally ``preprocessor_config.json`` (e.g. a download of
``Salesforce/blip-vqa-base``). Nothing is downloaded. BLIP's VQA model reads the image the way
its ITM model does — the question encoder cross-attends to the ViT's patches — and then writes
the answer with a text decoder that cross-attends to the question encoder's outputs. What is
explained is that answer's log-probability (:mod:`benchmark.models.answered`): the greedy answer
equals ``BlipForQuestionAnswering.generate`` on one question, and the question encoder's
cross-attention, self-attention and vision attention are the sites, as for ``hf-blip-itm``. In a
batch the decoder reads only the question's real tokens (HF's ``generate`` hands its decoder an
all-ones mask, and transformers 4.57 drops BLIP's cross-attention masks anyway:
:func:`~benchmark.models.hf_blip.mask_cross_attention`; so HF's batched answers can differ from
its one-at-a-time answers, which ours equal).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from benchmark.models import register
from benchmark.models.answered import OPTIONS, AnswerExplained, answer_logprob_of
from benchmark.models.hf_blip import HFBlipITM, from_folder
from benchmark.models.protocol import Member
from benchmark.models.tensors import TextBatch


@dataclass
class HFBlipVQA(AnswerExplained, HFBlipITM):
    """``module``: a ``BlipForQuestionAnswering``; ``tokenizer``: its tokenizer."""

    #: the score reads every question row (the decoder cross-attends to them all)
    reads_first_row = False

    @property
    def eos_id(self) -> int:
        return self.module.config.text_config.sep_token_id

    def _decoder_logits(self, image_embeds: torch.Tensor, text: TextBatch, answer: torch.Tensor,
                        image_atts: Optional[torch.Tensor]) -> torch.Tensor:
        """(B, 1 + A, V): the decoder's logits after its start token and each answer token."""
        question = HFBlipITM.text_hidden(self, image_embeds, text, image_atts)
        start = torch.full((answer.shape[0], 1), self.module.decoder_start_token_id,
                           device=answer.device)
        ids = torch.cat([start, answer.clamp(min=0)], 1)
        mask = torch.cat([torch.ones_like(start), (answer >= 0).long()], 1)
        return self.module.text_decoder(input_ids=ids, attention_mask=mask,
                                        encoder_hidden_states=question,
                                        encoder_attention_mask=text.attention_mask,
                                        return_dict=True).logits

    def answer_logprob(self, image_embeds: torch.Tensor, text: TextBatch, answer: torch.Tensor,
                       image_atts: Optional[torch.Tensor]) -> torch.Tensor:
        logits = self._decoder_logits(image_embeds, text, answer, image_atts)
        return answer_logprob_of(logits[:, :-1], answer)

    def next_logits(self, image_embeds: torch.Tensor, text: TextBatch, answer: torch.Tensor,
                    image_atts: Optional[torch.Tensor]) -> torch.Tensor:
        return self._decoder_logits(image_embeds, text, answer, image_atts)[:, -1]

    def randomisation_stages(self) -> List[Tuple[str, List[Member]]]:
        """``answer_head``; ``decoder_layer_{i}`` last to first; ``decoder_embeddings``; then
        the question encoder and the ViT as for ``hf-blip-itm``: ``text_layer_{i}``,
        ``text_embeddings``, ``vit_norm``, ``vit_block_{i}``, ``patch_embed``."""
        decoder = self.module.text_decoder
        layers = list(decoder.bert.encoder.layer)
        stages: List[Tuple[str, List[Member]]] = [("answer_head", [decoder.cls])]
        stages += [(f"decoder_layer_{i}", [layers[i]]) for i in reversed(range(len(layers)))]
        stages += [("decoder_embeddings", [decoder.bert.embeddings])]
        return stages + self.encoder_stages()


def _missing(path: str, **_) -> Optional[str]:
    if not (Path(path) / "config.json").is_file():
        return (f"hf-blip-vqa:{path}: no config.json there; pass the folder written by "
                "BlipForQuestionAnswering.save_pretrained (with its tokenizer files)")
    return None


@register("hf-blip-vqa", missing=_missing, argument="PATH", options=OPTIONS[:2])  # no prompt
def load(path: str, answer: str = "", max_new_tokens: int = 8, **_) -> HFBlipVQA:
    """``BlipForQuestionAnswering.from_pretrained(path)`` and its tokenizer, offline."""
    from transformers import BlipForQuestionAnswering

    return from_folder(BlipForQuestionAnswering, HFBlipVQA, "hf-blip-vqa", path,
                       fixed_answer=answer, max_new_tokens=max_new_tokens)
