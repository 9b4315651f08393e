"""Question-token perturbation (Chefer, Gur & Wolf, ICCV 2021, the text side of their
perturbation tests): remove the question's tokens in the order of a method's token relevance."""
from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np
import torch

from benchmark.core.errors import NotApplicable
from benchmark.core.options import Option, at_least
from benchmark.core.seeds import sample_rng
from benchmark.models.tensors import TextBatch, chunked
from metrics import register
from metrics._ties import record_ids
from metrics.base import CurveScores, ModelMetric
from metrics.curves import auc

#: the purpose of the tie-break permutation of a question's tokens
TOKEN_TIES = 43


def removal_masks(relevance: torch.Tensor, attention_mask: torch.Tensor, steps: int,
                  most_first: bool, sample_ids, seed: int) -> torch.Tensor:
    """(B, S + 1, L) attention masks: at point k the round(k·T/S) most (or least) relevant of
    a question's T tokens removed (the positions with a finite relevance are its question
    tokens; ties in a permutation seeded by (run seed, sample id)); everything else as given."""
    b, length = relevance.shape
    out = attention_mask[:, None, :].repeat(1, steps + 1, 1).clone()
    for i in range(b):
        question = torch.nonzero(torch.isfinite(relevance[i])).flatten()
        if question.numel() == 0:
            continue
        perm = torch.from_numpy(sample_rng(seed, sample_ids[i], TOKEN_TIES)
                                .permutation(question.numel()))
        values = relevance[i, question[perm]] * (1 if most_first else -1)
        order = question[perm][torch.sort(values, descending=True, stable=True).indices]
        for k in range(1, steps + 1):
            out[i, k, order[:round(k * question.numel() / steps)]] = 0
    return out


class _TextPerturbation(ModelMetric):
    most_first: ClassVar[bool] = True
    #: what each point of the curve reads: the match probability, or the answer's accuracy
    reads_answer: ClassVar[bool] = False
    needs_match = True
    #: it reads the method's question-token relevance (``token_relevance``), not its map
    reads_tokens: ClassVar[bool] = True
    steps = Option("steps", int, 4, "points of the curve: k/S of the question's tokens "
                   "removed, k = 0 … S", validate=at_least(1))

    def __call__(self, model, images, questions, maps, records=(), seed: int = 0,
                 token_relevance: Optional[torch.Tensor] = None, scorer=None,
                 **_) -> CurveScores:
        if token_relevance is None:
            raise NotApplicable("the method gives no question-token relevance")
        text = model.tokenize(questions)
        masks = removal_masks(token_relevance[:, :text.input_ids.shape[1]].cpu(),
                              text.attention_mask.cpu(), self.steps, self.most_first,
                              record_ids(records, len(images)), seed).to(images.device)
        b, p, length = masks.shape
        flat = TextBatch(text.input_ids.repeat_interleave(p, 0), masks.reshape(b * p, length))
        view, shown = model.for_batch(b).expanded(p), images.repeat_interleave(p, 0)
        read = (lambda m, x, t: m.answer_logits(x, t).argmax(-1)) if self.reads_answer \
            else (lambda m, x, t: m.match_probability(x, t))
        with torch.no_grad():
            out = chunked(lambda s, e: read(view.select(slice(s, e)), shown[s:e], flat[s:e]),
                          b * p, model.images_per_forward(256))
        if self.reads_answer:  # each point: the answer's accuracy under the dataset's scoring
            out = torch.tensor([scorer(model.answers[int(k)], records[i // p].answers)
                                for i, k in enumerate(out.tolist())])
        curves = out.reshape(b, p).double().cpu().numpy()
        return CurveScores(np.array([auc(c) for c in curves]),
                           np.arange(p, dtype=np.float64) / self.steps, curves)


@register("text_deletion_auc")
class TextDeletionAUC(_TextPerturbation):
    """Remove the question's most relevant tokens first (by the method's token relevance; ties
    in a seeded per-sample order): a removed token is left out of the text encoder's attention
    mask, so nothing attends to it. The curve is the match probability at k/S of the question
    tokens removed (k = 0 … S; ``[ENC]`` and ``[SEP]`` stay), AUC normalised. Lower is better.
    Methods that give no token relevance: not applicable."""

    higher_is_better = False


@register("text_deletion_lerf_auc")
class TextDeletionLeRF(_TextPerturbation):
    """As ``text_deletion_auc`` with the least relevant tokens removed first. Higher is
    better: a faithful relevance keeps the words that matter to the end."""

    most_first = False


@register("text_deletion_accuracy_auc")
class TextDeletionAccuracy(_TextPerturbation):
    """As ``text_deletion_auc``, each point the accuracy of the answer the model gives (its
    VQA head, scored as the dataset scores answers) instead of the match probability: the
    answer-accuracy side of Chefer et al.'s text perturbation test. Every question counts
    (its answer is defined whether or not it matches the image). Lower is better."""

    higher_is_better = False
    reads_answer = True
    needs_match = False
    needs_answers = True
