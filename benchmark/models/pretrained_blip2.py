"""Pretrained LAVIS BLIP-2 image-text matching (``blip2_image_text_matching``, LAVIS's
``pretrain`` config: EVA ViT-g/14 at 224 px, a BERT-base Q-Former with 32 queries), from local
disk only.

LAVIS builds it from two downloads: the EVA ViT-g weights (``eva_vit_g.pth``, a bare state dict
that ``create_eva_vit_g`` fetches) and the Q-Former checkpoint (``blip2_pretrained.pth``,
``{"model": state_dict}``, loaded over it with ``strict=False``). Both are read here from
``--weights-dir DIR`` or ``$TORCH_HOME/hub/checkpoints/``, every key checked as for BLIP
(:func:`benchmark.models.pretrained.load_checkpoint`): the EVA file must fill the ViT exactly;
the Q-Former checkpoint everything else, and it may also carry ViT weights, which then replace
the EVA file's as in LAVIS. The Q-Former's BERT is built from bert-base-uncased's published
configuration (no download of its weights: the checkpoint holds them); the tokenizer is
bert-base-uncased with ``[DEC]`` as bos, as ``Blip2Base.init_tokenizer`` makes it, read
offline (``--tokenizer-dir`` or the Hugging Face cache).
"""
from __future__ import annotations

import re
from functools import partial
from typing import Callable, Optional

import torch
from torch import nn

from benchmark.models import LOCAL_FILES, register, wrap
from benchmark.models.pretrained import (OPTIONAL_KEYS, _info, _missing, checkpoint_path,
                                         load_checkpoint, offline_bert_tokenizer)

QFORMER_FILE, EVA_FILE = "blip2_pretrained.pth", "eva_vit_g.pth"
#: bert-base-uncased's published configuration (the Q-Former's BERT)
BERT_BASE = dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                 attention_probs_dropout_prob=0.1, max_position_embeddings=512,
                 type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12, pad_token_id=0)
#: EVA ViT-g/14 as ``lavis.models.eva_vit.create_eva_vit_g`` builds it
EVA_VIT_G = dict(patch_size=14, use_mean_pooling=False, embed_dim=1408, depth=39,
                 num_heads=1408 // 88, mlp_ratio=4.3637, qkv_bias=True)


def blip2_tokenizer(tokenizer_dir: Optional[str] = None):
    """bert-base-uncased with ``[DEC]`` as bos (``Blip2Base.init_tokenizer``), offline."""
    tok = offline_bert_tokenizer(tokenizer_dir)
    tok.add_special_tokens({"bos_token": "[DEC]"})
    return tok


def build_blip2_itm(tokenizer, vit_depth: Optional[int] = None,
                    qformer_layers: Optional[int] = None, seed: int = 0) -> nn.Module:
    """LAVIS ``Blip2ITM`` of its ``pretrain`` config with random weights (seeded) and
    ``tokenizer``; ``vit_depth`` / ``qformer_layers`` keep the first blocks (a reduced-depth
    variant of the same architecture). Nothing is downloaded or loaded."""
    from lavis.common.registry import registry
    from lavis.models.blip2_models.blip2 import LayerNorm
    from lavis.models.blip2_models.blip2_image_text_matching import Blip2ITM
    from lavis.models.blip2_models.Qformer import BertConfig, BertLMHeadModel
    from lavis.models.eva_vit import VisionTransformer
    from omegaconf import OmegaConf

    class OfflineBlip2ITM(Blip2ITM):
        @classmethod
        def init_tokenizer(cls):
            return tokenizer

        @classmethod
        def init_vision_encoder(cls, model_name, img_size, drop_path_rate, use_grad_checkpoint,
                                precision):
            vit = VisionTransformer(img_size=img_size, drop_path_rate=drop_path_rate,
                                    norm_layer=partial(nn.LayerNorm, eps=1e-6),
                                    **{**EVA_VIT_G, "depth": vit_depth or EVA_VIT_G["depth"]})
            return vit, LayerNorm(vit.num_features)

        @classmethod
        def init_Qformer(cls, num_query_token, vision_width, cross_attention_freq=2):
            config = BertConfig(**{**BERT_BASE, "num_hidden_layers":
                                   qformer_layers or BERT_BASE["num_hidden_layers"]})
            config.encoder_width = vision_width
            config.add_cross_attention = True
            config.cross_attention_freq = cross_attention_freq
            config.query_length = num_query_token
            queries = nn.Parameter(torch.zeros(1, num_query_token, config.hidden_size))
            queries.data.normal_(mean=0.0, std=config.initializer_range)
            return BertLMHeadModel(config), queries

        def load_checkpoint_from_config(self, cfg, **kwargs):
            pass  # weights are loaded, with every key checked, by load_blip2_weights

    root = registry.get_path("library_root")
    cfg = OmegaConf.load(f"{root}/configs/models/blip2/blip2_pretrain.yaml").model
    cfg.vit_precision = "fp32"  # LAVIS halves the frozen ViT for GPUs; scores stay in fp32
    torch.manual_seed(seed)
    return OfflineBlip2ITM.from_config(cfg).eval()


def load_blip2_weights(model: nn.Module, weights_dir: Optional[str], what: str) -> None:
    """The EVA file into the ViT, then the Q-Former checkpoint over the whole model."""
    load_checkpoint(model.visual_encoder, checkpoint_path(EVA_FILE, weights_dir),
                    f"EVA ViT-g ({what})")
    load_checkpoint(model, checkpoint_path(QFORMER_FILE, weights_dir), f"BLIP-2 ({what})",
                    optional=re.compile(rf"{OPTIONAL_KEYS.pattern}|^visual_encoder\."))


def _loader(name: str, vit_depth: Optional[int], qformer_layers: Optional[int]) -> Callable:
    def load(weights_dir: Optional[str] = None, tokenizer_dir: Optional[str] = None, **_):
        model = build_blip2_itm(blip2_tokenizer(tokenizer_dir), vit_depth, qformer_layers)
        what = (f"{len(model.visual_encoder.blocks)} ViT blocks, "
                f"{len(model.Qformer.bert.encoder.layer)} Q-Former layers")
        load_blip2_weights(model, weights_dir, what)
        return wrap(model.eval(), name=name,
                    info=_info(model, checkpoint_path(QFORMER_FILE, weights_dir)))
    return load


def _missing_both(**options) -> Optional[str]:
    how = "download it from the LAVIS model zoo on a machine with internet and copy it there"
    return _missing(EVA_FILE, how, **options) or _missing(QFORMER_FILE, how, **options)


def register_blip2_itm(name: str, vit_depth: Optional[int] = None,
                       qformer_layers: Optional[int] = None) -> None:
    """Register LAVIS's BLIP-2 ITM read from ``eva_vit_g.pth`` + ``blip2_pretrained.pth``;
    ``vit_depth`` / ``qformer_layers`` register a reduced-depth variant."""
    register(name, missing=_missing_both, reads=LOCAL_FILES)(
        _loader(name, vit_depth, qformer_layers))


register_blip2_itm("blip2-itm")
