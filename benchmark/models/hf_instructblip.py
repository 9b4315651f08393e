"""Hugging Face ``transformers``' ``InstructBlipForConditionalGeneration`` (a decoder-only
language model, e.g. Vicuna) behind the model protocol, loaded from a local folder:
``--models hf-instructblip:PATH``.

``PATH`` is what ``InstructBlipProcessor.save_pretrained`` and the model's ``save_pretrained``
write (``config.json``, the weights, the language model's tokenizer, ``qformer_tokenizer/``,
optionally ``preprocessor_config.json``; e.g. a download of
``Salesforce/instructblip-vicuna-7b``). Nothing is downloaded. What is explained is the
log-probability of the answer (:mod:`benchmark.models.answered`).

InstructBLIP's language model never reads a patch: it reads the Q-Former's query outputs
(projected), and the queries read the ViT's patches through the Q-Former's cross-attention,
together with the instruction (the prompt, in the Q-Former's own tokenizer). So the patch grid
is the ViT's, and the sites are the Q-Former's as for BLIP-2 (``blip2.py``): ``text_cross``
the query rows × the patches in each cross-attention layer, ``text_self`` the Q-Former's
self-attention, ``vision`` the ViT's blocks. The language model's attention is not a site;
masking patches (``image_atts``) masks them in the Q-Former's cross-attention.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models import register
from benchmark.models.answered import NO_TOKEN, OPTIONS, AnswerExplained
from benchmark.models.generative import (ATTENTION, GenerativeVLM, PromptLayout, add_sites,
                                         register_site_attention)
from benchmark.models.hf_blip import hf_preprocessing
from benchmark.models.protocol import Member
from benchmark.models.tensors import TextBatch, state_hash

#: InstructBLIP's VQA v2 instruction (its paper's short-answer template)
PROMPT = "Question: {question} Short answer:"


@dataclass
class HFInstructBlip(GenerativeVLM):
    """``module``: an ``InstructBlipForConditionalGeneration``; ``qformer_tokenizer``: its
    Q-Former's tokenizer, whose ids of the prompt are bound as the side input
    ``"instruction"`` (:data:`NO_TOKEN` padded) by :meth:`prepared`."""

    qformer_tokenizer: Any = None
    side_inputs = ("answer", "instruction")
    decoder_only = False
    reads_first_row = False

    @property
    def n_queries(self) -> int:
        return self.module.query_tokens.shape[1]

    @property
    def _qformer_layers(self) -> List[nn.Module]:
        return list(self.module.qformer.encoder.layer)

    def prompt_ids(self, question: str) -> List[int]:
        """The image token, then the prompt with its BOS: the query outputs come first, as the
        processor and LAVIS put them."""
        return [self.layout.image_token] + super().prompt_ids(question)

    def prepared(self, images: torch.Tensor, questions: Sequence[str]) -> "HFInstructBlip":
        """This model with each sample's instruction and then its answer bound."""
        rows = [self.qformer_tokenizer(self.layout.template.format(question=q)).input_ids
                for q in questions]
        width = max(len(r) for r in rows)
        instruction = torch.tensor([r + [NO_TOKEN] * (width - len(r)) for r in rows],
                                   device=self.device)
        return AnswerExplained.prepared(self.given(instruction=instruction), images, questions)

    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        return self.module.vision_model(pixel_values=images).last_hidden_state

    def queries(self, image_embeds: torch.Tensor,
                image_atts: Optional[torch.Tensor]) -> torch.Tensor:
        """(B, Q, D) the projected query outputs the language model reads."""
        b = image_embeds.shape[0]
        instruction = self.side("instruction", b)
        if instruction is None:
            raise ValueError(f"model {self.name!r} reads its instruction: bind it first "
                             "(model.prepared(images, questions))")
        ones = torch.ones(b, self.n_queries, dtype=torch.long, device=image_embeds.device)
        out = self.module.qformer(
            input_ids=instruction.clamp(min=0),
            attention_mask=torch.cat([ones, (instruction >= 0).long()], 1),
            query_embeds=self.module.query_tokens.expand(b, -1, -1),
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_atts if image_atts is not None else torch.ones(
                image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device),
        ).last_hidden_state
        return self.module.language_projection(out[:, :self.n_queries])

    def _forward(self, image_embeds: torch.Tensor, text: TextBatch, answer: torch.Tensor,
                 image_atts: Optional[torch.Tensor]) -> Tuple[torch.Tensor, int]:
        """The language model's sequence with the query outputs in the image tokens' place."""
        spliced = F.pad(self.queries(image_embeds, image_atts), (0, 0, 1, 0))
        return super()._forward(spliced, text, answer, None)

    @property
    def language_model(self) -> nn.Module:
        return self.module.language_model.model

    @property
    def lm_head(self) -> nn.Module:
        return self.module.language_model.lm_head

    def vision_attention(self) -> List[nn.Module]:
        return [layer.self_attn for layer in self.module.vision_model.encoder.layers]

    def cross_attention_rows(self, text: TextBatch) -> torch.Tensor:
        """Every query (the only rows that cross-attend to the patches)."""
        return torch.ones(text.input_ids.shape[0], self.n_queries, device=text.input_ids.device)

    def attention_sites(self, kind: str) -> List[nn.Module]:
        if kind == "text_self":
            return [layer.attention.attention.dropout for layer in self._qformer_layers]
        if kind == "text_cross":
            return [layer.crossattention.attention.dropout for layer in self._qformer_layers
                    if layer.has_cross_attention]
        return super().attention_sites(kind)

    def randomisation_stages(self) -> List[Tuple[str, List[Member]]]:
        """The decoder's (:meth:`decoder_stages`); ``language_projection``;
        ``qformer_layer_{i}`` last to first; ``qformer_embeddings`` (with the query tokens);
        ``vision_norm``; ``vision_layer_{i}`` last to first; ``vision_embeddings``."""
        m, qformer = self.module, self._qformer_layers
        vision, blocks = m.vision_model, list(m.vision_model.encoder.layers)
        stages = self.decoder_stages() + [("language_projection", [m.language_projection])]
        stages += [(f"qformer_layer_{i}", [qformer[i]]) for i in reversed(range(len(qformer)))]
        stages += [("qformer_embeddings", [m.qformer.embeddings, m.query_tokens]),
                   ("vision_norm", [vision.post_layernorm])]
        stages += [(f"vision_layer_{i}", [blocks[i]]) for i in reversed(range(len(blocks)))]
        return stages + [("vision_embeddings", [vision.embeddings])]


def _missing(path: str, **_) -> Optional[str]:
    if not (Path(path) / "config.json").is_file():
        return (f"hf-instructblip:{path}: no config.json there; pass the folder written by "
                "InstructBlipForConditionalGeneration.save_pretrained with its processor files")
    if not (Path(path) / "qformer_tokenizer").is_dir():
        return (f"hf-instructblip:{path}: no qformer_tokenizer/ there; save the processor too "
                "(InstructBlipProcessor.save_pretrained writes it)")
    return None


@register("hf-instructblip", missing=_missing, argument="PATH", options=OPTIONS)
def load(path: str, answer: str = "", max_new_tokens: int = 8, prompt: Optional[str] = None,
         **_) -> HFInstructBlip:
    """``InstructBlipForConditionalGeneration.from_pretrained(path)`` and its two tokenizers,
    offline."""
    from transformers import AutoTokenizer, InstructBlipForConditionalGeneration

    register_site_attention()
    folder = Path(path)
    model = InstructBlipForConditionalGeneration.from_pretrained(
        folder, local_files_only=True, attn_implementation=ATTENTION).eval()
    cfg = model.config
    if not cfg.use_decoder_only_language_model:
        raise ValueError(f"hf-instructblip:{path}: its language model is an encoder-decoder "
                         "(Flan-T5); only decoder-only ones (Vicuna) are supported")
    template = prompt or PROMPT
    if "{question}" not in template:
        raise ValueError(f"prompt {template!r} has no {{question}}")
    vision = cfg.vision_config
    side = vision.image_size // vision.patch_size
    adapter = HFInstructBlip(
        model, f"hf-instructblip:{path}", (side, side), 0,
        hf_preprocessing(folder, vision.image_size), (),
        {"fingerprint": state_hash(model), "source": str(folder.resolve())},
        tokenizer=AutoTokenizer.from_pretrained(folder, local_files_only=True),
        fixed_answer=answer, max_new_tokens=max_new_tokens,
        qformer_tokenizer=AutoTokenizer.from_pretrained(folder / "qformer_tokenizer",
                                                        local_files_only=True),
        layout=PromptLayout(template, cfg.image_token_id, cfg.num_query_tokens, 0))
    add_sites(adapter.decoder_attention() + adapter.vision_attention())
    # BLIP-2's default: the cross-attention layer at PNP-VQA's relative depth (7 of 12)
    adapter.default_block = 7 * len(adapter.attention_sites("text_cross")) // 12
    return adapter
