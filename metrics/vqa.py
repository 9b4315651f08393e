"""Answer accuracy: the official VQA accuracy (Antol et al. 2015) and exact match.

The answer processing is the official evaluator's own, imported from LAVIS's copy of it
(``lavis.common.vqa_tools.vqa_eval.VQAEval``, the GT-Vision-Lab code), not re-implemented, so the
quirks the published numbers carry are kept:

- the prediction gets the full processing (whitespace, punctuation, lower case, number words →
  digits, articles dropped, contractions restored); the human answers get only the punctuation
  step, and only when the annotators disagree — a prediction "two" never matches ten "two"s;
- the punctuation step removes a mark outright when the text has it next to a space or holds a
  digit-comma-digit anywhere, else replaces it by a space that is never stripped (a human
  answer "yes!" among disagreeing ones never matches); its period rule is a look-ahead
  (``(?!<=\\d)``), so a period is kept only before a digit, and ``re.UNICODE`` is passed as the
  substitution count, so at most 32 periods go;
- contractions are restored after lower-casing, so the evaluator's ``"Im"``/``"Ive"`` keys never
  apply.
"""
from __future__ import annotations

import functools
from typing import Sequence


@functools.lru_cache(maxsize=1)
def _official():
    # LAVIS's package import costs seconds: only when an answer is scored
    from lavis.common.vqa_tools.vqa_eval import VQAEval

    return VQAEval()


def normalize_answer(answer: str) -> str:
    """The official evaluator's processing of a predicted answer: newlines and tabs to spaces,
    stripped, then its punctuation and digit/article steps."""
    ev = _official()
    text = answer.replace("\n", " ").replace("\t", " ").strip()
    return ev.processDigitArticle(ev.processPunctuation(text))


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """Official VQA accuracy of one predicted answer against the human answers (usually 10).

    For each human answer, the accuracy against the *other* answers is min(#matching / 3, 1);
    the result is the mean over these leave-one-out subsets. The prediction is processed with
    :func:`normalize_answer`, the human answers as the official evaluator does (punctuation only,
    and only when they disagree; see the module docstring). An empty answer list → NaN.
    """
    if not answers:
        return float("nan")
    pred = normalize_answer(prediction)
    gts = [str(a) for a in answers]
    if len(set(gts)) > 1:
        gts = [_official().processPunctuation(a) for a in gts]
    accs = []
    for i in range(len(gts)):
        others = gts[:i] + gts[i + 1:]
        accs.append(min(1.0, sum(a == pred for a in others) / 3.0))
    return float(sum(accs) / len(accs))


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the prediction equals the (first) ground-truth answer, both processed with
    :func:`normalize_answer` (GQA and the synthetic scenes: one answer per question)."""
    return float(normalize_answer(prediction) == normalize_answer(answers[0]))
