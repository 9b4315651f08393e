"""Embedded tiny BLIP-ITM models, built offline from LAVIS's own classes.

The model is a real :class:`lavis.models.blip_models.blip_image_text_matching.BlipITM`: LAVIS's
``VisionTransformerEncoder`` and ``XBertEncoder`` (BERT with cross-attention in every layer, 12
heads like BLIP so PNP-VQA's per-head Grad-CAM applies unchanged), small widths, and a tokenizer
over a vocabulary written for the synthetic domain (``vocab.txt``). Two changes make it learnable
on 2 CPU cores, both inside LAVIS's module structure:

* the ViT's patch projection is a 3-layer strided convolution stem (receptive field 15 px > the
  8 px patch), because a single linear patch projection cannot see an object's shape from the part
  of it that falls in one patch;
* a per-patch head predicts colour, shape and size of the object under each patch (dense
  auxiliary supervision from the generator's instance and semantic maps; used only in training).

``vqa_head`` answers from the same ``[ENC]`` output that ``itm_head`` reads.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from benchmark.models.blip import BLIP_MEAN, BLIP_STD, with_blip_tokens
from benchmark.models.tensors import Preprocessing

VOCAB_FILE = Path(__file__).with_name("vocab.txt")


@dataclass(frozen=True)
class Vocabulary:
    """The domain a tiny model was trained on, as its heads read it: the answer labels, the
    attribute words its per-patch and per-question training heads predict, and the segmentation
    classes its fusion encoder reads. Each checkpoint record keeps it (``vocabulary``), so a
    model loads without the data generator; training takes it from the generator."""

    answers: Tuple[str, ...]
    colours: Tuple[str, ...]
    shapes: Tuple[str, ...]
    sizes: Tuple[str, ...]
    semantic_classes: Tuple[str, ...]

    @classmethod
    def from_record(cls, record: dict) -> "Vocabulary":
        return cls(**{k: tuple(v) for k, v in record.items()})

    def to_record(self) -> dict:
        return {k: list(v) for k, v in asdict(self).items()}

    @property
    def patch_groups(self) -> Dict[str, int]:
        """Per-patch training targets: class counts per group, index 0 meaning "no object"."""
        return {"colour": len(self.colours) + 1, "shape": len(self.shapes) + 1,
                "size": len(self.sizes) + 1}

    @property
    def token_outputs(self) -> int:
        """Per-question training targets of the text head: which shapes and colours the question
        names are present, and the count 0..3+."""
        return len(self.shapes) + len(self.colours) + 4


@dataclass(frozen=True)
class TinyConfig:
    """Everything that defines an embedded model's architecture (hashed into its fingerprint)."""

    image_size: int = 96
    patch_size: int = 8
    vit_width: int = 96
    vit_depth: int = 3
    vit_heads: int = 4
    text_width: int = 96
    text_layers: int = 6
    text_heads: int = 12
    stem_channels: int = 48
    n_answers: int = 12  # the synthetic domain's answers (checked against the vocabulary)
    fused: bool = False
    fusion: Dict[str, object] = field(default_factory=dict)  # MultiLevelEncoder kwargs when fused

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    @property
    def default_block(self) -> int:
        """Grad-CAM block at PNP-VQA's relative depth (its block 7 of BLIP's 12 text layers)."""
        return (7 * self.text_layers) // 12


def _tokenizer():
    from transformers import BertTokenizer

    return with_blip_tokens(BertTokenizer(vocab_file=str(VOCAB_FILE), do_lower_case=True))


def _conv_stem(width: int, channels: int) -> nn.Module:
    """Three stride-2 3×3 convolutions: an 8× down-sampling with a 15 px receptive field."""
    return nn.Sequential(
        nn.Conv2d(3, channels // 2, 3, stride=2, padding=1), nn.GELU(),
        nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1), nn.GELU(),
        nn.Conv2d(channels, width, 3, stride=2, padding=1),
    )


def build_tiny_vit(cfg: TinyConfig) -> nn.Module:
    """LAVIS's ``VisionTransformerEncoder`` of ``cfg`` with the convolutional stem (the caller
    seeds the initialisation)."""
    from lavis.models.vit import VisionTransformerEncoder

    if cfg.patch_size != 8:
        raise ValueError("the convolutional stem down-samples by 8: use patch_size=8")
    vit = VisionTransformerEncoder(img_size=cfg.image_size, patch_size=cfg.patch_size,
                                   embed_dim=cfg.vit_width, depth=cfg.vit_depth,
                                   num_heads=cfg.vit_heads, mlp_ratio=4.0, qkv_bias=True)
    vit.patch_embed.proj = _conv_stem(cfg.vit_width, cfg.stem_channels)
    vit.vision_width = cfg.vit_width  # normally set by VisionTransformerEncoder.from_config
    return vit


def build_tiny_itm(cfg: TinyConfig, vocab: Vocabulary, seed: int = 0):
    """Construct (untrained) the embedded model for ``cfg`` over ``vocab`` with a seeded
    initialisation."""
    from lavis.models.blip_models.blip_image_text_matching import BlipITM
    from lavis.models.med import BertConfig, XBertEncoder

    class TinyBlipITM(BlipITM):
        """A LAVIS BlipITM with the synthetic-domain tokenizer and a VQA answer head."""

        @classmethod
        def init_tokenizer(cls):
            return _tokenizer()

    if len(vocab.answers) != cfg.n_answers:
        raise ValueError(f"the config has {cfg.n_answers} answers, the vocabulary "
                         f"{len(vocab.answers)}")
    torch.manual_seed(seed)
    vit = build_tiny_vit(cfg)
    tok = _tokenizer()
    bert_cfg = BertConfig(vocab_size=len(tok), hidden_size=cfg.text_width,
                          num_hidden_layers=cfg.text_layers, num_attention_heads=cfg.text_heads,
                          intermediate_size=4 * cfg.text_width, max_position_embeddings=48,
                          add_cross_attention=True, encoder_width=cfg.vit_width,
                          add_type_embeddings=False, hidden_dropout_prob=0.0,
                          attention_probs_dropout_prob=0.0, pad_token_id=0)
    text = XBertEncoder(config=bert_cfg, add_pooling_layer=False)
    if cfg.fused:
        from benchmark.models.difnet import FusedVisualEncoder

        vit = FusedVisualEncoder(vit, grid=cfg.grid, n_classes=len(vocab.semantic_classes), **cfg.fusion)
    model = TinyBlipITM(image_encoder=vit, text_encoder=text, embed_dim=cfg.text_width,
                        max_txt_len=40)
    model.vqa_head = nn.Sequential(nn.Linear(cfg.text_width, 2 * cfg.text_width), nn.GELU(),
                                   nn.Linear(2 * cfg.text_width, cfg.n_answers))
    model.patch_head = nn.Linear(cfg.vit_width, sum(vocab.patch_groups.values()))
    model.token_head = nn.Linear(cfg.text_width, vocab.token_outputs)
    return model


def preprocessing(cfg: "TinyConfig") -> Preprocessing:
    """The tiny models' input: BLIP's mean/std at ``cfg.image_size`` (bilinear resize; generated
    scenes are rendered at that size, so nothing is resized on the default run)."""
    return Preprocessing(cfg.image_size, BLIP_MEAN, BLIP_STD, "bilinear")


def load_weights(model: nn.Module, path: Path, expected_sha256: Optional[str] = None) -> None:
    data = path.read_bytes()
    if expected_sha256 and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"checkpoint {path} does not match its recorded sha256; "
                         "re-train it with `python -m benchmark train`")
    import io

    model.load_state_dict(torch.load(io.BytesIO(data), map_location="cpu"))
