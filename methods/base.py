"""The shape every attribution method shares, and the pieces they reuse."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from benchmark.models.adapter import ITMAdapter, TextBatch


class NotApplicable(ValueError):
    """Raised when a method cannot explain a model (the runner records the reason, no crash)."""


class Attribution:
    """Base class: subclasses implement :meth:`attribute`; calling the object validates the output.

    ``name`` is set by ``methods.register``.
    """

    name: str = ""

    def applicable(self, model: ITMAdapter) -> Optional[str]:
        """``None`` when the method can explain ``model``, else the reason it cannot."""
        return None

    def attribute(self, model: ITMAdapter, images: torch.Tensor, questions: Sequence[str],
                  **kwargs: Any) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, model: ITMAdapter, images: torch.Tensor, questions: Sequence[str],
                 **kwargs: Any) -> torch.Tensor:
        reason = self.applicable(model)
        if reason:
            raise NotApplicable(f"{self.name} does not apply to {model.name}: {reason}")
        maps = self.attribute(model, images, questions, **kwargs)
        gh, gw = model.grid
        if tuple(maps.shape) != (images.shape[0], gh, gw):
            raise RuntimeError(f"method {self.name!r} returned shape {tuple(maps.shape)}, "
                               f"expected {(images.shape[0], gh, gw)}")
        return maps.detach().float().cpu()


def target_score(model: ITMAdapter, image_embeds: torch.Tensor, text: TextBatch,
                 target: str = "itm") -> torch.Tensor:
    """(B,) scalar explained per sample from the visual tokens.

    ``"itm"``: the raw match logit (PNP-VQA's Grad-CAM target); ``"itm_prob"``: the match
    probability; ``"answer"``: the logit of the predicted VQA answer.
    """
    hidden = model.text_hidden(image_embeds, text)[:, 0]
    if target == "itm":
        return model.model.itm_head(hidden)[:, 1]
    if target == "itm_prob":
        return model.model.itm_head(hidden).softmax(-1)[:, 1]
    if target == "answer":
        logits = model.model.vqa_head(hidden)
        return logits.gather(1, logits.argmax(-1, keepdim=True)).squeeze(1)
    raise ValueError(f"unknown target {target!r}; use itm, itm_prob or answer")


def question_token_mask(text: TextBatch) -> torch.Tensor:
    """(B, L) float mask of the real question tokens: not ``[ENC]``, not ``[SEP]``, not padding."""
    mask = text.attention_mask.clone().float()
    mask[:, 0] = 0
    lengths = text.attention_mask.sum(1) - 1
    mask[torch.arange(len(lengths)), lengths] = 0
    return mask


def to_grid(patch_values: torch.Tensor, grid: tuple) -> torch.Tensor:
    """(B, gh·gw) → (B, gh, gw)."""
    return patch_values.reshape(patch_values.shape[0], *grid)
