"""One adapter over every LAVIS ``BlipITM`` (or subclass) the suite explains.

Methods and metrics only talk to :class:`ITMAdapter`: it tokenises like LAVIS (first token
replaced by ``[ENC]``), runs the visual encoder and the cross-attending text encoder, and exposes
the parts attribution methods need (cross-attention layers, the visual token stream, the fusion
encoder when there is one). Inputs that are not the image — the fused models' segmentation stream —
are bound per batch with :meth:`ITMAdapter.bind` so that methods keep the ``(model, images,
questions)`` call shape.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch import nn


@dataclass
class TextBatch:
    """Tokenised questions as tensors (captum repeats tensors across IG steps, not lists)."""

    input_ids: torch.Tensor  # (B, L) with [ENC] in position 0
    attention_mask: torch.Tensor  # (B, L)

    def to(self, device: torch.device) -> "TextBatch":
        return TextBatch(self.input_ids.to(device), self.attention_mask.to(device))

    def repeat(self, n: int) -> "TextBatch":
        return TextBatch(self.input_ids.repeat_interleave(n, 0),
                         self.attention_mask.repeat_interleave(n, 0))


@dataclass
class ITMAdapter:
    """A LAVIS BlipITM behind the suite's model contract.

    Attributes:
        model: the wrapped ``BlipITM``.
        name: registry name (or ``"wrapped"``).
        grid: ``(gh, gw)`` patch grid of the visual tokens (image CLS excluded).
        default_block: cross-attention layer PNP-VQA-style Grad-CAM reads by default.
        info: fingerprint, held-out accuracies, config — copied into the run manifest.
    """

    model: nn.Module
    name: str
    grid: tuple
    default_block: int
    answers: Sequence[str] = ()
    info: Dict[str, Any] = field(default_factory=dict)
    _bound: Dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ structure
    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def image_size(self) -> int:
        """Input side in pixels (the patch grid times the patch size)."""
        vit = getattr(self.model.visual_encoder, "vit", self.model.visual_encoder)
        size = vit.patch_embed.img_size
        return int(size[0] if isinstance(size, (tuple, list)) else size)

    @property
    def visual_encoder(self) -> nn.Module:
        return self.model.visual_encoder

    @property
    def fusion_encoder(self) -> Optional[nn.Module]:
        """The MultiLevelEncoder of a fused model, ``None`` for the baseline."""
        return getattr(self.model.visual_encoder, "fusion", None)

    @property
    def text_layers(self) -> List[nn.Module]:
        return list(self.model.text_encoder.encoder.layer)

    def cross_attention(self, block: int) -> nn.Module:
        """The ``BertSelfAttention`` of layer ``block``'s cross-attention."""
        layers = self.text_layers
        if not 0 <= block < len(layers) or not hasattr(layers[block], "crossattention"):
            raise ValueError(f"model {self.name!r} has no cross-attention layer {block} "
                             f"(it has {len(layers)} text layers)")
        return layers[block].crossattention.self

    @property
    def fingerprint(self) -> str:
        return str(self.info.get("fingerprint", ""))

    def to(self, device: str | torch.device) -> "ITMAdapter":
        self.model.to(device)
        return self

    # ------------------------------------------------------------------ inputs
    def tokenize(self, questions: Sequence[str]) -> TextBatch:
        """Tokenise like ``BlipITM.forward``: longest padding, ``[ENC]`` as the first token."""
        text = self.tokenizer(list(questions), padding="longest", truncation=True,
                              max_length=self.model.max_txt_len, return_tensors="pt")
        ids = text.input_ids.clone()
        ids[:, 0] = self.tokenizer.enc_token_id
        return TextBatch(ids, text.attention_mask).to(self.device)

    @contextlib.contextmanager
    def bind(self, **inputs: torch.Tensor) -> Iterator["ITMAdapter"]:
        """Bind per-batch non-image inputs (e.g. ``segmentation=``) for the forwards inside."""
        previous = dict(self._bound)
        self._bound.update({k: v for k, v in inputs.items() if v is not None})
        try:
            yield self
        finally:
            self._bound.clear()
            self._bound.update(previous)

    def bound(self, key: str, batch: int) -> Optional[torch.Tensor]:
        """A bound input matched to a batch of ``batch`` images (repeated for expanded batches)."""
        value = self._bound.get(key)
        if value is None or value.shape[0] == batch:
            return value
        if batch % value.shape[0]:
            raise ValueError(f"bound input {key!r} has {value.shape[0]} rows for a batch of {batch}")
        return value.repeat_interleave(batch // value.shape[0], 0)

    # ------------------------------------------------------------------ forwards
    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1 + gh·gw, D) tokens the text encoder cross-attends to."""
        enc = self.model.visual_encoder
        seg = self.bound("segmentation", images.shape[0])
        if seg is not None and hasattr(enc, "fusion"):
            return enc.forward_features(images, seg)
        return enc.forward_features(images)

    def text_hidden(self, image_embeds: torch.Tensor, text: TextBatch,
                    image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Last hidden states of the cross-attending text encoder, (B, L, Dt)."""
        if image_atts is None:
            image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long,
                                    device=image_embeds.device)
        out = self.model.text_encoder(text.input_ids, attention_mask=text.attention_mask,
                                      encoder_hidden_states=image_embeds,
                                      encoder_attention_mask=image_atts, return_dict=True)
        return out.last_hidden_state

    def itm_logits_from_tokens(self, image_embeds: torch.Tensor, text: TextBatch,
                               image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.model.itm_head(self.text_hidden(image_embeds, text, image_atts)[:, 0])

    def itm_logits(self, images: torch.Tensor, questions: Sequence[str] | TextBatch) -> torch.Tensor:
        """(B, 2) ITM logits (no-match, match) as ``BlipITM.forward(match_head="itm")``."""
        text = questions if isinstance(questions, TextBatch) else self.tokenize(questions)
        return self.itm_logits_from_tokens(self.visual_tokens(images), text)

    def match_probability(self, images: torch.Tensor, questions: Sequence[str] | TextBatch) -> torch.Tensor:
        """(B,) softmax probability of the match class: the score deletion/insertion track."""
        return self.itm_logits(images, questions).softmax(-1)[:, 1]

    def answer_logits(self, images: torch.Tensor, questions: Sequence[str] | TextBatch,
                      image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, n_answers) VQA logits; ``image_atts`` (B, 1+N) restricts which patches are read."""
        if not hasattr(self.model, "vqa_head"):
            raise ValueError(f"model {self.name!r} has no VQA answer head")
        text = questions if isinstance(questions, TextBatch) else self.tokenize(questions)
        hidden = self.text_hidden(self.visual_tokens(images), text, image_atts)
        return self.model.vqa_head(hidden[:, 0])

    def predict_answers(self, images: torch.Tensor, questions: Sequence[str]) -> List[str]:
        with torch.no_grad():
            idx = self.answer_logits(images, questions).argmax(-1).tolist()
        return [self.answers[i] for i in idx]
