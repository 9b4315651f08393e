"""Hugging Face ``transformers``' ``Qwen2VLForConditionalGeneration`` behind the model protocol,
loaded from a local folder: ``--models hf-qwen2-vl:PATH``.

``PATH`` is what ``save_pretrained`` writes (``config.json``, the weights) with the tokenizer
files and ``preprocessor_config.json`` beside them (``AutoProcessor.save_pretrained`` writes
all three, e.g. a download of ``Qwen/Qwen2-VL-2B-Instruct``). Nothing is downloaded. What is
explained is the log-probability of the answer (:mod:`benchmark.models.generative`).

Qwen2-VL reads an image at its own resolution: 14-px patches, each 2×2 of them merged into one
token of the language model. Every sample of a run shares one patch grid, so the image is
resized to a square of ``image_size`` pixels (default: the size Qwen2-VL's own processor gives
a 448-px square, 448 for the released models: a 16×16 grid of merged tokens), and the grid is
those merged tokens. Their positions in the language model are Qwen2-VL's 3-D M-RoPE ones
(``get_rope_index``: time, row, column), computed as ``generate`` computes them.

The vision tower attends per image, without a CLS token, over four times as many patches as
the grid has tokens, so no ``vision`` sites are declared: rollout and Chefer's rule stop at the
merged tokens (each built by the patch merger from its own 2×2 patches only).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import torch
from torch import nn

from benchmark.core.options import Option
from benchmark.models import register
from benchmark.models.answered import OPTIONS
from benchmark.models.generative import (ATTENTION, GenerativeVLM, add_sites, prompt_layout,
                                         register_site_attention)
from benchmark.models.hf_blip import hf_preprocessing
from benchmark.models.protocol import Member
from benchmark.models.tensors import state_hash

#: Qwen2-VL-Instruct's chat template (default system prompt) with LLaVA-1.5's short-answer
#: instruction for VQA v2
PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
          "<|vision_start|><|image_pad|><|vision_end|>{question}\n"
          "Answer the question using a single word or phrase.<|im_end|>\n<|im_start|>assistant\n")


@dataclass
class HFQwen2VL(GenerativeVLM):
    """``module``: a ``Qwen2VLForConditionalGeneration``."""

    @property
    def _vision(self) -> nn.Module:
        return self.module.model.visual

    def _grid_thw(self, b: int) -> torch.Tensor:
        """Each image's (time, rows, columns) of 14-px patches, as the processor reports it."""
        m = self._vision.spatial_merge_size
        return torch.tensor([[1, self.grid[0] * m, self.grid[1] * m]] * b, device=self.device)

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """(B·P, C·T·p·p) the flattened patches ``Qwen2VLImageProcessor`` writes for these
        normalised images (a still image is its own ``temporal_patch_size`` frames; the patches
        of each 2×2 merge block consecutive)."""
        cfg = self._vision.config
        p, m, t = cfg.patch_size, cfg.spatial_merge_size, cfg.temporal_patch_size
        b, c, h, w = images.shape
        frames = images[:, None].expand(b, t, c, h, w)
        x = frames.reshape(b, t, c, h // (p * m), m, p, w // (p * m), m, p)
        return x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(b * (h // p) * (w // p), c * t * p * p)

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        merged = self._vision(self.patches(images).to(self._vision.dtype),
                              grid_thw=self._grid_thw(images.shape[0]))
        return merged.reshape(images.shape[0], -1, merged.shape[-1])

    def positions(self, ids: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
        """(3, B, T) M-RoPE positions (``get_rope_index`` over the counted tokens)."""
        return self.module.model.get_rope_index(ids, self._grid_thw(ids.shape[0]), None,
                                                counted)[0]

    def vision_attention(self) -> List[nn.Module]:
        return []

    def randomisation_stages(self) -> List[Tuple[str, List[Member]]]:
        """The decoder's (:meth:`decoder_stages`); ``merger``; ``vision_block_{i}`` last to
        first; ``patch_embed``."""
        vision = self._vision
        blocks = list(vision.blocks)
        stages = self.decoder_stages() + [("merger", [vision.merger])]
        stages += [(f"vision_block_{i}", [blocks[i]]) for i in reversed(range(len(blocks)))]
        return stages + [("patch_embed", [vision.patch_embed])]


def square_size(folder: Path, wanted: int, factor: int) -> int:
    """The side Qwen2-VL's processor (``smart_resize`` with the folder's pixel bounds) gives a
    ``wanted``-px square image."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    path = folder / "preprocessor_config.json"
    cfg = json.loads(path.read_text()) if path.is_file() else {}
    bounds = {k: cfg[k] for k in ("min_pixels", "max_pixels") if cfg.get(k)}
    return smart_resize(wanted, wanted, factor=factor, **bounds)[0]


def _missing(path: str, **_) -> Optional[str]:
    if not (Path(path) / "config.json").is_file():
        return (f"hf-qwen2-vl:{path}: no config.json there; pass the folder written by "
                "Qwen2VLForConditionalGeneration.save_pretrained with its processor files")
    return None


@register("hf-qwen2-vl", missing=_missing, argument="PATH", options=OPTIONS + (
    Option("image_size", int, 448, "square image side in pixels, before Qwen2-VL's processor "
           "rounds it to whole merged patches"),))
def load(path: str, answer: str = "", max_new_tokens: int = 8, prompt: Optional[str] = None,
         image_size: int = 448, **_) -> HFQwen2VL:
    """``Qwen2VLForConditionalGeneration.from_pretrained(path)`` and its tokenizer, offline."""
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration

    register_site_attention()
    folder = Path(path)
    model = Qwen2VLForConditionalGeneration.from_pretrained(
        folder, local_files_only=True, attn_implementation=ATTENTION).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    vision = model.config.vision_config
    factor = vision.patch_size * vision.spatial_merge_size
    size = square_size(folder, image_size, factor)
    side = size // factor
    adapter = HFQwen2VL(model, f"hf-qwen2-vl:{path}", (side, side),
                        model.config.text_config.num_hidden_layers // 2,
                        hf_preprocessing(folder, size), (),
                        {"fingerprint": state_hash(model), "source": str(folder.resolve())},
                        tokenizer=tokenizer, fixed_answer=answer, max_new_tokens=max_new_tokens)
    # the vision tower's attention goes through the same function: identity sites there too
    add_sites(adapter.decoder_attention() + [blk.attn for blk in model.model.visual.blocks])
    adapter.layout = prompt_layout(tokenizer, prompt or PROMPT, model.config.image_token_id,
                                   side * side)
    return adapter
