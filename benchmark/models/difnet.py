"""A DIFNet-style ``MultiLevelEncoder`` (Wu et al., "DIFNet: Boosting Visual Information Flow
for Image Captioning", CVPR 2022), written from its published description.

Two token streams of equal length — visual features and segmentation features — are embedded to
``d_model`` (Linear → ReLU → Dropout → LayerNorm each). The first ``Lf`` encoder layers are applied
``T`` times to each stream separately, sharing their attention and feed-forward weights but with a
LayerNorm per stream ("iterative independent layer normalisation"). At layer ``Lf`` the streams are
added and the remaining ``N - Lf`` layers run on the sum. The output is the final stream plus both
pre-fusion streams (a residual over the fusion). Rows of the visual input that are entirely
``padding_idx`` are padding: no position attends to them.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch
from torch import nn


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with ``h`` heads of widths ``d_k`` (queries/keys), ``d_v``.

    ``attn_drop`` receives the attention probabilities (B, h, S, S): hooking its output gives the
    attention map without touching this class (the capture utility relies on that).
    """

    def __init__(self, d_model: int, d_k: int, d_v: int, h: int, dropout: float) -> None:
        super().__init__()
        self.h, self.d_k, self.d_v = h, d_k, d_v
        self.q = nn.Linear(d_model, h * d_k)
        self.k = nn.Linear(d_model, h * d_k)
        self.v = nn.Linear(d_model, h * d_v)
        self.o = nn.Linear(h * d_v, d_model)
        self.attn_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_padding: Optional[torch.Tensor]) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.h, self.d_k).transpose(1, 2)
        k = self.k(x).view(b, s, self.h, self.d_k).transpose(1, 2)
        v = self.v(x).view(b, s, self.h, self.d_v).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_k)
        if key_padding is not None:
            # the dtype's minimum, not -inf: an all-padding row then stays finite
            scores = scores.masked_fill(key_padding[:, None, None, :], torch.finfo(scores.dtype).min)
        attn = self.attn_drop(scores.softmax(-1))
        return self.o((attn @ v).transpose(1, 2).reshape(b, s, self.h * self.d_v))


class EncoderLayer(nn.Module):
    """Post-norm transformer layer whose two LayerNorms exist once per stream (``n_streams``)."""

    def __init__(self, d_model: int, d_k: int, d_v: int, h: int, d_ff: int, dropout: float,
                 n_streams: int = 1) -> None:
        super().__init__()
        self.attn = MultiHeadAttention(d_model, d_k, d_v, h, dropout)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Dropout(dropout),
                                nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)
        self.norm_attn = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_streams))
        self.norm_ff = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_streams))

    def forward(self, x: torch.Tensor, key_padding: Optional[torch.Tensor],
                stream: int = 0) -> torch.Tensor:
        x = self.norm_attn[stream](x + self.drop(self.attn(x, key_padding)))
        x = self.norm_ff[stream](x + self.drop(self.ff(x)))
        if key_padding is not None:
            x = x.masked_fill(key_padding[..., None], 0.0)
        return x


def _embedding(d_in: int, d_model: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_model), nn.ReLU(), nn.Dropout(dropout),
                         nn.LayerNorm(d_model))


class MultiLevelEncoder(nn.Module):
    """Fuse a visual stream and a segmentation stream (DIFNet's encoder).

    Args:
        Lf: index of the fusion layer (layers ``0 … Lf-1`` run per stream); must be ``< N``.
        T: how many times each pre-fusion layer is applied to each stream.
        N: number of encoder layers.
        padding_idx: value marking padding rows of the visual input.
        d_model, d_k, d_v, h, d_ff, dropout: transformer sizes.
        d_in: width of the visual input features; d_seg: number of segmentation classes.
    """

    def __init__(self, Lf: int, T: int, N: int, padding_idx: float = 0, d_model: int = 512,
                 d_k: int = 64, d_v: int = 64, h: int = 8, d_ff: int = 2048,
                 dropout: float = 0.1, d_in: int = 2048, d_seg: int = 133) -> None:
        super().__init__()
        if not 0 <= Lf < N:
            raise ValueError(f"MultiLevelEncoder needs 0 <= Lf < N, got Lf={Lf}, N={N}")
        if T < 1:
            raise ValueError(f"MultiLevelEncoder needs T >= 1, got T={T}")
        self.Lf, self.T, self.N, self.padding_idx = Lf, T, N, padding_idx
        self.embed_input = _embedding(d_in, d_model, dropout)
        self.embed_pixel = _embedding(d_seg, d_model, dropout)
        self.layers = nn.ModuleList(
            EncoderLayer(d_model, d_k, d_v, h, d_ff, dropout, n_streams=2 if i < Lf else 1)
            for i in range(N))

    def padding_mask(self, input: torch.Tensor) -> torch.Tensor:
        """(B, S) bool: rows of the raw visual input that are all ``padding_idx``."""
        return (input == self.padding_idx).all(-1)

    def streams(self, input: torch.Tensor, pixel: torch.Tensor):
        """The two pre-fusion streams ``(x, y)`` and the key padding mask (``None`` if no padding)."""
        if input.shape[:2] != pixel.shape[:2]:
            raise ValueError(f"MultiLevelEncoder streams differ in shape: input {tuple(input.shape)}"
                             f" vs pixel {tuple(pixel.shape)} (they need the same batch and length)")
        pad = self.padding_mask(input)
        key_padding = pad if pad.any() else None
        x, y = self.embed_input(input), self.embed_pixel(pixel)
        for layer in self.layers[:self.Lf]:
            for _ in range(self.T):
                x = layer(x, key_padding, stream=0)
                y = layer(y, key_padding, stream=1)
        return x, y, key_padding

    def forward(self, input: torch.Tensor, pixel: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(output (B, S, d_model), padding mask (B, S))``."""
        x, y, key_padding = self.streams(input, pixel)
        z = x + y
        for layer in self.layers[self.Lf:]:
            z = layer(z, key_padding)
        return z + x + y, self.padding_mask(input)


class FusedVisualEncoder(nn.Module):
    """A LAVIS ViT followed by a :class:`MultiLevelEncoder` over its patch tokens.

    ``forward_features(images, segmentation)`` returns (B, 1 + N, d_model): the ViT's CLS token
    (projected if widths differ) and the fused patch tokens, which the text encoder cross-attends
    to in place of the ViT's. ``segmentation`` is (B, N, C): the per-patch class histogram; ``None``
    feeds zeros (the "none" ablation).
    """

    def __init__(self, vit: nn.Module, grid: int, Lf: int = 1, T: int = 2, N: int = 3,
                 d_model: Optional[int] = None, h: int = 4, d_ff: Optional[int] = None,
                 dropout: float = 0.1, n_classes: int = 5) -> None:
        super().__init__()
        self.vit = vit
        width = vit.vision_width
        d_model = d_model or width
        self.grid = grid
        self.n_classes = n_classes
        self.fusion = MultiLevelEncoder(Lf, T, N, padding_idx=0, d_model=d_model,
                                        d_k=d_model // h, d_v=d_model // h, h=h,
                                        d_ff=d_ff or 4 * d_model, dropout=dropout, d_in=width,
                                        d_seg=n_classes)
        self.cls_proj = nn.Identity() if d_model == width else nn.Linear(width, d_model)
        self.vision_width = d_model

    @property
    def patch_embed(self) -> nn.Module:
        return self.vit.patch_embed

    def forward_features(self, images: torch.Tensor,
                         segmentation: Optional[torch.Tensor] = None) -> torch.Tensor:
        tokens = self.vit.forward_features(images)
        patches = tokens[:, 1:]
        if segmentation is None:
            segmentation = patches.new_zeros(patches.shape[0], patches.shape[1], self.n_classes)
        fused, _ = self.fusion(patches, segmentation.to(patches.dtype))
        return torch.cat([self.cls_proj(tokens[:, :1]), fused], dim=1)

    def forward(self, images: torch.Tensor,
                segmentation: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.forward_features(images, segmentation)
