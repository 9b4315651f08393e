"""Hugging Face ``transformers``' ``BlipForImageTextRetrieval`` behind the model protocol, loaded
from a local folder: ``--models hf-blip-itm:PATH``.

``PATH`` is what ``save_pretrained`` writes (``config.json`` and the weights), with the tokenizer
files beside them and, optionally, the image processor's ``preprocessor_config.json`` (its size,
mean, std and resample filter become the model's preprocessing; without it, BLIP's defaults at
the config's image size). Nothing is downloaded. The forward is HF's own: the ITM logits equal
``BlipForImageTextRetrieval(input_ids, pixel_values, attention_mask=...).itm_score``. There is no
VQA head, so the head-based VQA metrics are "not applicable" on this model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import torch
from torch import nn

from benchmark.models import register
from benchmark.models.blip import BLIP_MEAN, BLIP_STD
from benchmark.models.protocol import Member, VLModel
from benchmark.models.tensors import Preprocessing, TextBatch, state_hash

#: PIL's resample codes, as HF's image processors store them
RESAMPLE = {0: "nearest", 2: "bilinear", 3: "bicubic"}


@dataclass
class HFBlipITM(VLModel):
    """``module``: a ``BlipForImageTextRetrieval``; ``tokenizer``: its tokenizer."""

    tokenizer: Any = None

    @property
    def _text_layers(self) -> List[nn.Module]:
        return list(self.module.text_encoder.encoder.layer)

    def tokenize(self, questions: Sequence[str]) -> TextBatch:
        text = self.tokenizer(list(questions), padding="longest", truncation=True,
                              max_length=self.module.config.text_config.max_position_embeddings,
                              return_tensors="pt")
        return TextBatch(text.input_ids, text.attention_mask).to(self.device)

    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        return self.module.vision_model(pixel_values=images, return_dict=True).last_hidden_state

    def text_hidden(self, image_embeds: torch.Tensor, text: TextBatch,
                    image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        if image_atts is None:
            image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long,
                                    device=image_embeds.device)
        out = self.module.text_encoder(input_ids=text.input_ids, attention_mask=text.attention_mask,
                                       encoder_hidden_states=image_embeds,
                                       encoder_attention_mask=image_atts, return_dict=True)
        return out.last_hidden_state

    def match_head(self, enc_hidden: torch.Tensor) -> torch.Tensor:
        return self.module.itm_head(enc_hidden)

    def text_embedding_site(self) -> nn.Module:
        return self.module.text_encoder.embeddings

    def attention_sites(self, kind: str) -> List[nn.Module]:
        if kind == "vision":
            return [layer.self_attn.dropout for layer in self.module.vision_model.encoder.layers]
        if kind in ("text_self", "text_cross"):
            attr = "attention" if kind == "text_self" else "crossattention"
            return [getattr(layer, attr).self.dropout for layer in self._text_layers]
        if kind == "fusion":
            return []
        raise ValueError(f"unknown attention kind {kind!r}")

    def randomisation_stages(self) -> List[Tuple[str, List[Member]]]:
        """``heads``, then :meth:`encoder_stages`."""
        return [("heads", [self.module.itm_head])] + self.encoder_stages()

    def encoder_stages(self) -> List[Tuple[str, List[Member]]]:
        """``text_layer_{i}`` last to first; ``text_embeddings``; ``vit_norm``; ``vit_block_{i}``
        last to first; ``patch_embed`` (patch, class and position embeddings)."""
        m, vision = self.module, self.module.vision_model
        layers, blocks = self._text_layers, list(vision.encoder.layers)
        stages = [(f"text_layer_{i}", [layers[i]]) for i in reversed(range(len(layers)))]
        stages += [("text_embeddings", [m.text_encoder.embeddings]),
                   ("vit_norm", [vision.post_layernorm])]
        stages += [(f"vit_block_{i}", [blocks[i]]) for i in reversed(range(len(blocks)))]
        return stages + [("patch_embed", [vision.embeddings])]


def mask_cross_attention(text_model: nn.Module) -> None:
    """Make a BLIP text model's cross-attention read only the keys its encoder mask allows.

    transformers 4.57's BLIP text layer hands its cross-attention the encoder mask under the
    self-attention mask's name, which the cross-attention then replaces by its own (absent)
    encoder mask: every key is read, padding and masked-out patches included. A pre-hook hands
    the mask back under its name (the weights and unmasked forwards are unchanged)."""
    for layer in text_model.encoder.layer:
        if getattr(layer, "crossattention", None) is not None:
            layer.crossattention.self.register_forward_pre_hook(_encoder_mask, with_kwargs=True)


def _encoder_mask(_module, args, kwargs):
    if kwargs.get("encoder_hidden_states") is not None and \
            kwargs.get("encoder_attention_mask") is None:
        kwargs["encoder_attention_mask"] = kwargs.get("attention_mask")
    return args, kwargs


def hf_preprocessing(folder: Path, image_size: int) -> Preprocessing:
    """From ``preprocessor_config.json`` when the folder has one, else BLIP's defaults."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return Preprocessing(image_size, BLIP_MEAN, BLIP_STD, "bicubic")
    cfg = json.loads(path.read_text())
    size = cfg.get("size", image_size)
    side = size.get("height", image_size) if isinstance(size, dict) else int(size)
    return Preprocessing(int(side), tuple(cfg.get("image_mean", BLIP_MEAN)),
                         tuple(cfg.get("image_std", BLIP_STD)),
                         RESAMPLE.get(cfg.get("resample", 3), "bicubic"))


def _missing(path: str, **_) -> Optional[str]:
    folder = Path(path)
    if not (folder / "config.json").is_file():
        return (f"hf-blip-itm:{path}: no config.json there; pass the folder written by "
                "BlipForImageTextRetrieval.save_pretrained (with its tokenizer files)")
    return None


@register("hf-blip-itm", missing=_missing, argument="PATH")
def load(path: str, **_) -> HFBlipITM:
    """``BlipForImageTextRetrieval.from_pretrained(path)`` and its tokenizer, offline."""
    from transformers import BlipForImageTextRetrieval

    return from_folder(BlipForImageTextRetrieval, HFBlipITM, "hf-blip-itm", path)


def from_folder(model_cls: type, adapter_cls: type, name: str, path: str, **fields: Any):
    """``model_cls.from_pretrained(path)`` (a Hugging Face BLIP, offline, its cross-attention
    masks handed back) and its tokenizer behind ``adapter_cls``; Grad-CAM's default layer at
    PNP-VQA's relative depth (7 of 12)."""
    from transformers import AutoTokenizer

    folder = Path(path)
    model = model_cls.from_pretrained(folder, local_files_only=True).eval()
    for text in (model.text_encoder, getattr(getattr(model, "text_decoder", None), "bert", None)):
        if text is not None:
            mask_cross_attention(text)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    vision = model.config.vision_config
    side = vision.image_size // vision.patch_size
    layers = model.config.text_config.num_hidden_layers
    info = {"fingerprint": state_hash(model), "source": str(folder.resolve())}
    return adapter_cls(model, f"{name}:{path}", (side, side), (7 * layers) // 12,
                       hf_preprocessing(folder, vision.image_size), (), info,
                       tokenizer=tokenizer, **fields)
