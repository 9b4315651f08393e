"""Values the model protocol passes (tokenised questions, preprocessing, decoded fusion
attention) and two tensor helpers every layer shares."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

#: the autocast dtype of each precision a run or a fine-tuning can ask for (fp32: no autocast)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class TextBatch:
    """Tokenised questions as tensors (captum repeats tensors across IG steps, not lists)."""

    input_ids: torch.Tensor  # (B, L) with the model's encoder token in position 0
    attention_mask: torch.Tensor  # (B, L)

    def to(self, device: torch.device) -> "TextBatch":
        return TextBatch(self.input_ids.to(device), self.attention_mask.to(device))

    def repeat(self, n: int) -> "TextBatch":
        return TextBatch(self.input_ids.repeat_interleave(n, 0),
                         self.attention_mask.repeat_interleave(n, 0))

    def __getitem__(self, index) -> "TextBatch":
        return TextBatch(self.input_ids[index], self.attention_mask[index])


@dataclass(frozen=True)
class Preprocessing:
    """Resize and normalisation of (H, W, 3) uint8 images into the model's input space."""

    image_size: int
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    resample: str = "bilinear"  # PIL filter name: LAVIS's ``blip_image_eval`` uses bicubic

    def normalise(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """(B, H, W, 3) uint8 → (B, 3, H, W) float, ``(x / 255 − mean) / std``."""
        x = images_uint8.permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std

    def __call__(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """Images of any size, resized to ``image_size`` squared, normalised (on the CPU)."""
        from PIL import Image

        side = self.image_size
        method = getattr(Image, self.resample.upper())
        arrays = [a if a.shape[:2] == (side, side) else
                  np.asarray(Image.fromarray(a).resize((side, side), method)) for a in arrays]
        return self.normalise(torch.from_numpy(np.stack(arrays)))


@dataclass
class FusionAttention:
    """A fusion encoder's recorded attention decoded into streams, each a list of
    (B, H, N, N) maps over the patch tokens (no CLS) in forward order."""

    visual: List[torch.Tensor] = field(default_factory=list)  # pre-fusion calls on the image stream
    side: List[torch.Tensor] = field(default_factory=list)  # pre-fusion calls on the side stream
    fused: List[torch.Tensor] = field(default_factory=list)  # post-fusion layers


def chunked(fn: Callable[[int, int], torch.Tensor], n: int, chunk: int) -> torch.Tensor:
    """Concatenate ``fn(start, stop)`` over ``range(0, n, chunk)`` (bounded memory batches)."""
    return torch.cat([fn(s, min(n, s + chunk)) for s in range(0, n, chunk)])


def state_hash(model: nn.Module) -> str:
    """sha256 over parameters and buffers in name order: the weights part of a fingerprint."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
