"""Build a LAVIS BlipITM offline (no tokenizer or weight download) for reference comparisons."""
from __future__ import annotations

import torch


def build_lavis_itm(image_size: int = 96, patch_size: int = 4, text_layers: int = 12,
                    text_heads: int = 12, width: int = 48, vit_depth: int = 1, seed: int = 0):
    from lavis.models.blip_models.blip_image_text_matching import BlipITM
    from lavis.models.med import BertConfig, XBertEncoder
    from lavis.models.vit import VisionTransformerEncoder

    from benchmark.models.tiny import _tokenizer

    class OfflineBlipITM(BlipITM):
        @classmethod
        def init_tokenizer(cls):
            return _tokenizer()

    torch.manual_seed(seed)
    vit = VisionTransformerEncoder(img_size=image_size, patch_size=patch_size, embed_dim=width,
                                   depth=vit_depth, num_heads=4)
    vit.vision_width = width
    tok = _tokenizer()
    cfg = BertConfig(vocab_size=len(tok), hidden_size=width, num_hidden_layers=text_layers,
                     num_attention_heads=text_heads, intermediate_size=2 * width,
                     max_position_embeddings=48, add_cross_attention=True, encoder_width=width,
                     add_type_embeddings=False)
    text = XBertEncoder(config=cfg, add_pooling_layer=False)
    model = OfflineBlipITM(image_encoder=vit, text_encoder=text, embed_dim=width, max_txt_len=40)
    return model.eval()


def build_lavis_blip2_itm(image_size: int = 96, patch_size: int = 16, vit_width: int = 48,
                          vit_depth: int = 2, width: int = 48, qformer_layers: int = 4,
                          n_queries: int = 8, seed: int = 0):
    """A LAVIS ``Blip2ITM`` with a tiny EVA ViT and a tiny Q-Former (cross-attention every
    second layer, as BLIP-2's), random weights, the suite's offline tokenizer."""
    from functools import partial

    from lavis.models.blip2_models.blip2_image_text_matching import Blip2ITM
    from lavis.models.blip2_models.Qformer import BertConfig, BertLMHeadModel
    from lavis.models.eva_vit import VisionTransformer

    from benchmark.models.tiny import _tokenizer

    class OfflineBlip2ITM(Blip2ITM):
        @classmethod
        def init_tokenizer(cls):
            return _tokenizer()

        @classmethod
        def init_vision_encoder(cls, model_name, img_size, drop_path_rate, use_grad_checkpoint,
                                precision):
            from lavis.models.blip2_models.blip2 import LayerNorm

            vit = VisionTransformer(img_size=img_size, patch_size=patch_size, embed_dim=vit_width,
                                    depth=vit_depth, num_heads=4, mlp_ratio=4.0, qkv_bias=True,
                                    use_mean_pooling=False,
                                    norm_layer=partial(torch.nn.LayerNorm, eps=1e-6))
            return vit, LayerNorm(vit.num_features)

        @classmethod
        def init_Qformer(cls, num_query_token, vision_width, cross_attention_freq=2):
            config = BertConfig(vocab_size=len(_tokenizer()), hidden_size=width,
                                num_hidden_layers=qformer_layers, num_attention_heads=4,
                                intermediate_size=2 * width, max_position_embeddings=64)
            config.encoder_width = vision_width
            config.add_cross_attention = True
            config.cross_attention_freq = cross_attention_freq
            config.query_length = num_query_token
            qformer = BertLMHeadModel(config)
            queries = torch.nn.Parameter(torch.zeros(1, num_query_token, width))
            queries.data.normal_(mean=0.0, std=config.initializer_range)
            return qformer, queries

    torch.manual_seed(seed)
    model = OfflineBlip2ITM(img_size=image_size, num_query_token=n_queries, embed_dim=width,
                            vit_precision="fp32")
    return model.eval()


def register_random_blip2(monkeypatch, name: str = "blip2-itm-tiny@random") -> str:
    """Register :func:`build_lavis_blip2_itm` behind the protocol as model ``name`` for the
    duration of a test (no files: the model is built in memory), and return the name."""
    from benchmark import models

    def load(**_):
        return models.wrap(build_lavis_blip2_itm(), name=name)

    load.missing, load.argument, load.reads = (lambda **_: None), None, ()
    monkeypatch.setitem(models.REGISTRY._items, name, load)
    return name
