"""The scores a method explains, one class each, registered by name.

A target maps the text encoder's ``[ENC]`` output (B, D) to one scalar per sample. Methods take
a target by name through their ``target`` option (``--method-option cross_attn_gradcam.target=
itm_prob``); ``answer:WORD`` explains the logit of a given answer. A new target is a new
``@register_target`` class here or in a plugin module, with no edit to any method.
"""
from __future__ import annotations

from typing import Optional

import torch

from benchmark.core.errors import InputError
from benchmark.models.protocol import VLModel
from benchmark.core.registry import Registry

TARGETS = Registry("target")


class Target:
    """``target(model, enc_hidden) -> (B,)``: the scalar explained per sample. ``argument`` is
    the text after ``:`` in ``name:argument`` (``None`` without one)."""

    name: str = ""
    takes_argument = False

    def __init__(self, argument: Optional[str] = None) -> None:
        if argument is not None and not self.takes_argument:
            raise InputError(f"target {self.name!r} takes no argument (got {argument!r})")
        self.argument = argument

    def __call__(self, model: VLModel, enc_hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def bind(self, model: VLModel) -> VLModel:
        """The view of ``model`` the score is read from (a target may bind a side input)."""
        return model


def register_target(name: str):
    """Class decorator: register a :class:`Target` subclass under ``name``."""

    def deco(cls):
        cls.name = name
        TARGETS.register(name, cls)
        return cls

    return deco


@register_target("itm")
class MatchLogit(Target):
    """The raw ITM match logit: PNP-VQA's Grad-CAM target."""

    def __call__(self, model: VLModel, enc_hidden: torch.Tensor) -> torch.Tensor:
        return model.match_head(enc_hidden)[:, 1]


@register_target("itm_nonmatch")
class NoMatchLogit(Target):
    """The ITM head's other class, the no-match logit: the output the random-logit sanity test
    explains instead of the match logit."""

    def __call__(self, model: VLModel, enc_hidden: torch.Tensor) -> torch.Tensor:
        return model.match_head(enc_hidden)[:, 0]


@register_target("itm_prob")
class MatchProbability(Target):
    """The softmax probability of the match class (what deletion and insertion track)."""

    def __call__(self, model: VLModel, enc_hidden: torch.Tensor) -> torch.Tensor:
        return model.match_head(enc_hidden).softmax(-1)[:, 1]


@register_target("answer")
class AnswerLogit(Target):
    """The VQA head's logit of the predicted answer (``answer``) or of a given one
    (``answer:WORD``, a word of the model's answer list). On a model that writes its answer
    (``VLModel.writes_answers``): the log-probability of the answer it writes, or of ``WORD``."""

    takes_argument = True

    def bind(self, model: VLModel) -> VLModel:
        if self.argument is None or not model.writes_answers:
            return model
        return model.given(answer=model.encode_answers([self.argument]))

    def __call__(self, model: VLModel, enc_hidden: torch.Tensor) -> torch.Tensor:
        if model.writes_answers:
            return model.match_head(enc_hidden)[:, 1]
        if not model.has_answer_head:
            raise InputError(f"target 'answer': model {model.name!r} has no VQA answer head")
        logits = model.answer_head(enc_hidden)
        if self.argument is None:
            index = logits.argmax(-1, keepdim=True)
        elif self.argument in model.answers:
            index = torch.full((len(logits), 1), list(model.answers).index(self.argument),
                               device=logits.device)
        else:
            raise InputError(f"target 'answer:{self.argument}': not one of {model.name!r}'s "
                             f"{len(model.answers)} answers")
        return logits.gather(1, index).squeeze(1)


def parse_target(spec: str) -> Target:
    """``"itm"``, ``"answer:yes"`` … → the target object (one-line error for unknown names)."""
    name, colon, argument = spec.partition(":")
    return TARGETS.get(name)(argument if colon else None)


def check_target(spec: object) -> None:
    """Raises the one-line error :func:`parse_target` would, for an option's value."""
    parse_target(str(spec))
