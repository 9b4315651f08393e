"""Text pointing: does a method's most relevant question token name what the answer depends on?

On data whose questions come from a program (the synthetic scenes: ``record.extra["program"]``)
the words that matter are known: the colour and shape words of the objects the question refers
to, its anchor's, and its relation word. The question-token analogue of the pointing game above
chance (:mod:`metrics.pointing_game`).
"""
from __future__ import annotations

from typing import ClassVar, Optional, Set

import numpy as np
import torch

from benchmark.core.errors import NotApplicable
from metrics import register
from metrics.base import CurveScores, ModelMetric

#: the parts of a relation phrase that name no relation ("left of": "left")
FILLER = {"of", "the"}


def known_words(program: dict) -> Set[str]:
    """The colour, shape and relation words of a question program (referents, their anchors
    and the program's own relation)."""
    words: Set[str] = set()

    def visit(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("colour", "shape", "relation") and isinstance(value, str):
                    words.update(w for w in value.split() if w not in FILLER)
                else:
                    visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit({k: v for k, v in program.items() if k in ("referents", "relation")})
    return words


def names_one(token: str, words: Set[str]) -> bool:
    """Whether a word-piece token is one of ``words`` (a plural, "circles", counts)."""
    return token in words or (token.endswith("s") and token[:-1] in words)


def pointing_above_chance(relevance: np.ndarray, hits: np.ndarray) -> float:
    """Over one question's tokens: the share of known words among the tokens of largest
    relevance (a tie splits the point) minus their share among all tokens (what a random
    relevance scores in expectation)."""
    top = relevance == relevance.max()
    return float(hits[top].mean() - hits.mean())


@register("text_pointing_above_chance")
class TextPointingAboveChance(ModelMetric):
    """Per question: 1 when the method's most relevant question token is a word the answer
    depends on (the program's colour, shape and relation words; tied tokens share the point),
    minus the share of such words among the question's tokens — 0 for a random relevance in
    expectation, at most 1 − that share. Data without question programs, methods without token
    relevance: not applicable. Higher is better."""

    reads_tokens: ClassVar[bool] = True
    needs_trained_model = False

    def __call__(self, model, images, questions, maps, records=(),
                 token_relevance: Optional[torch.Tensor] = None, **_) -> CurveScores:
        if token_relevance is None:
            raise NotApplicable("the method gives no question-token relevance")
        if not records or any("program" not in r.extra for r in records):
            raise NotApplicable("the data have no question programs (the words that matter "
                                "are unknown)")
        strings = model.token_strings(model.tokenize(questions))
        values = []
        for rel, tokens, rec in zip(token_relevance.cpu().double().numpy(), strings, records):
            question = [i for i in range(len(tokens)) if np.isfinite(rel[i])]
            words = known_words(rec.extra["program"])
            hits = np.array([names_one(tokens[i], words) for i in question], dtype=float)
            values.append(pointing_above_chance(rel[question], hits) if question
                          else float("nan"))
        return CurveScores(np.array(values))
