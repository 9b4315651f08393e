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
