"""Hugging Face ``transformers``' ``LlavaForConditionalGeneration`` behind the model protocol,
loaded from a local folder: ``--models hf-llava:PATH``.

``PATH`` is what ``save_pretrained`` writes for the model (``config.json``, the weights) with the
tokenizer files beside them (``AutoProcessor.save_pretrained`` writes both, e.g. a download of
``llava-hf/llava-1.5-7b-hf``), and optionally ``preprocessor_config.json`` (mean, std, resample;
the image is resized to the vision tower's square input). Nothing is downloaded. What is
explained is the log-probability of the answer (:mod:`benchmark.models.generative`): the
patches are LLaVA's projected CLIP patches (24×24 at 336 px / 14 px), the ``text_cross`` block
is the decoder's attention from the rows that predict the answer to those patches.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from torch import nn

from benchmark.models import register
from benchmark.models.answered import OPTIONS
from benchmark.models.generative import (ATTENTION, GenerativeVLM, add_sites, prompt_layout,
                                         register_site_attention)
from benchmark.models.hf_blip import hf_preprocessing
from benchmark.models.protocol import Member
from benchmark.models.tensors import state_hash

#: LLaVA-1.5's prompt for VQA v2 (its evaluation script's short-answer instruction)
PROMPT = "USER: <image>\n{question}\nAnswer the question using a single word or phrase. ASSISTANT:"


@dataclass
class HFLlava(GenerativeVLM):
    """``module``: a ``LlavaForConditionalGeneration``."""

    @property
    def _vision_layers(self) -> List[nn.Module]:
        """The CLIP layers whose output LLaVA reads (up to ``vision_feature_layer``)."""
        layers = list(self.module.model.vision_tower.vision_model.encoder.layers)
        read = self.module.config.vision_feature_layer
        return layers[:read + 1 if read >= 0 else len(layers) + 1 + read]

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack(list(self.module.model.get_image_features(pixel_values=images)))

    def vision_attention(self) -> List[nn.Module]:
        return [layer.self_attn for layer in self._vision_layers]

    def randomisation_stages(self) -> List[Tuple[str, List[Member]]]:
        """The decoder's (:meth:`decoder_stages`); ``projector``; ``vision_layer_{i}`` (those
        read) last to first; ``vision_embeddings`` (patch and position embeddings, the
        pre-norm)."""
        m, blocks = self.module, self._vision_layers
        vision = m.model.vision_tower.vision_model
        stages = self.decoder_stages() + [("projector", [m.model.multi_modal_projector])]
        stages += [(f"vision_layer_{i}", [blocks[i]]) for i in reversed(range(len(blocks)))]
        return stages + [("vision_embeddings", [vision.embeddings, vision.pre_layrnorm])]


def _missing(path: str, **_) -> Optional[str]:
    if not (Path(path) / "config.json").is_file():
        return (f"hf-llava:{path}: no config.json there; pass the folder written by "
                "LlavaForConditionalGeneration.save_pretrained with its tokenizer files")
    return None


@register("hf-llava", missing=_missing, argument="PATH", options=OPTIONS)
def load(path: str, answer: str = "", max_new_tokens: int = 8, prompt: Optional[str] = None,
         **_) -> HFLlava:
    """``LlavaForConditionalGeneration.from_pretrained(path)`` and its tokenizer, offline."""
    from transformers import AutoTokenizer, LlavaForConditionalGeneration

    register_site_attention()
    folder = Path(path)
    model = LlavaForConditionalGeneration.from_pretrained(
        folder, local_files_only=True, attn_implementation=ATTENTION).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    cfg = model.config
    if cfg.vision_feature_select_strategy != "default":
        raise ValueError(f"hf-llava:{path}: vision_feature_select_strategy "
                         f"{cfg.vision_feature_select_strategy!r} is not supported ('default')")
    side = cfg.vision_config.image_size // cfg.vision_config.patch_size
    adapter = HFLlava(model, f"hf-llava:{path}", (side, side),
                      cfg.text_config.num_hidden_layers // 2,
                      hf_preprocessing(folder, cfg.vision_config.image_size), (),
                      {"fingerprint": state_hash(model), "source": str(folder.resolve())},
                      tokenizer=tokenizer, fixed_answer=answer, max_new_tokens=max_new_tokens)
    add_sites(adapter.decoder_attention() + list(
        layer.self_attn for layer in model.model.vision_tower.vision_model.encoder.layers))
    adapter.layout = prompt_layout(tokenizer, prompt or PROMPT, cfg.image_token_index, side * side)
    return adapter
