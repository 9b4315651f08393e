"""A LAVIS ``BlipITM`` whose visual encoder is a :class:`~benchmark.models.difnet.FusedVisualEncoder`
(ViT, then DIFNet's MultiLevelEncoder over the patch tokens and a segmentation stream): the one
place that decodes the fusion encoder's call layout."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, List, Optional, Sequence, Tuple

import torch
from torch import nn

from benchmark.models.blip import BlipAdapter
from benchmark.models.protocol import Member
from benchmark.models.tensors import FusionAttention


@dataclass
class FusedBlipAdapter(BlipAdapter):
    """Side input ``segmentation``: (B, gh·gw, classes) per-patch class histograms; without it
    the stream is zeros (the "none" ablation)."""

    side_inputs: ClassVar[Tuple[str, ...]] = ("segmentation",)

    @property
    def encoder(self) -> nn.Module:
        return self.module.visual_encoder

    @property
    def vit(self) -> nn.Module:
        return self.encoder.vit

    def side_input_classes(self, key: str) -> Optional[int]:
        return self.encoder.n_classes if key == "segmentation" else None

    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder.forward_features(images, self.side("segmentation", images.shape[0]))

    def attention_sites(self, kind: str) -> List[nn.Module]:
        if kind == "fusion":
            return [layer.attn.attn_drop for layer in self.encoder.fusion.layers]
        return super().attention_sites(kind)

    def fusion_attention(self, calls: Sequence[List[torch.Tensor]]) -> FusionAttention:
        """Layers ``0 … Lf-1`` ran ``T`` times on the image stream and the segmentation stream
        alternately (image first); layers ``Lf … N-1`` once each on their sum."""
        lf = self.encoder.fusion.Lf
        out = FusionAttention()
        for layer_calls in calls[:lf]:
            out.visual += layer_calls[0::2]
            out.side += layer_calls[1::2]
        out.fused = [layer_calls[-1] for layer_calls in calls[lf:]]
        return out

    def randomisation_stages(self) -> List[Tuple[str, List[Member]]]:
        """As the baseline's, with ``fusion_layer_{i}`` from last to first and then
        ``fusion_embeddings`` (both stream embeddings and the CLS projection) between the text
        embeddings and the ViT."""
        stages = super().randomisation_stages()
        split = next(i for i, (name, _) in enumerate(stages) if name == "text_embeddings") + 1
        fusion = self.encoder.fusion
        own: List[Tuple[str, List[Member]]] = [
            (f"fusion_layer_{i}", [fusion.layers[i]]) for i in reversed(range(len(fusion.layers)))]
        own.append(("fusion_embeddings", [fusion.embed_input, fusion.embed_pixel,
                                          self.encoder.cls_proj]))
        return stages[:split] + own + stages[split:]
