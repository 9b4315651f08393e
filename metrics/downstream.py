"""Downstream VQA accuracy when the answerer reads only heatmap-selected patches (PNP-VQA's use)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from benchmark.models.adapter import ITMAdapter
from metrics import register
from metrics._ties import patch_order, ranks, record_ids, tie_break
from metrics.base import CurveScores, ModelMetric
from metrics.curves import auc

#: PNP-VQA captions K = 20 of 576 patches (3.5%); the keep grid runs from that budget to the whole
#: image in equal ratios, so every doubling of the budget weighs the same in the AUC. A linear grid
#: from 10% would spend nine of its ten points where random patches already show every object
#: (objects span many patches), i.e. away from the sparse regime where a heatmap's choice matters.
PNP_FRACTION = 20 / 576
KEEP_FRACTIONS = np.round(np.geomspace(PNP_FRACTION, 1.0, 10), 4)
DROP_FRACTIONS = np.round(np.linspace(0.0, 0.9, 10), 2)


def _answers_with_patches(model: ITMAdapter, images: torch.Tensor, questions: Sequence[str],
                          keep: torch.Tensor) -> list:
    """Predicted answers when sample b reads only the patches where ``keep[b, k]`` is True.

    ``keep`` is (B, K, N); the image CLS slot is never read (PNP-VQA's captioner sees only the
    gathered patches). Returns K lists of B answers, in (B, K) order flattened sample-major.
    """
    b, k, n = keep.shape
    with torch.no_grad():
        tokens = model.visual_tokens(images)
        tokens = tokens.repeat_interleave(k, 0)
        atts = torch.cat([torch.zeros(b * k, 1, dtype=torch.long, device=keep.device),
                          keep.reshape(b * k, n).long()], dim=1).to(tokens.device)
        text = model.tokenize(questions).repeat(k)
        hidden = model.text_hidden(tokens, text, atts)
        idx = model.model.vqa_head(hidden[:, 0]).argmax(-1).tolist()
    return [model.answers[i] for i in idx]


def _scores(preds: list, records: Sequence, k: int, scorer: Callable) -> np.ndarray:
    return np.array([[scorer(preds[b * k + j], records[b].answers) for j in range(k)]
                     for b in range(len(records))], dtype=np.float64)


class _PatchSubsetVQA(ModelMetric):
    needs_answers = True
    fractions = KEEP_FRACTIONS
    keep_top = True

    def __call__(self, model, images, questions, maps, records, scorer: Callable = None,
                 seed: int = 0, **_) -> CurveScores:
        n = model.grid[0] * model.grid[1]
        rank = ranks(patch_order(maps, tie_break(record_ids(records, len(maps)), n, seed)))
        counts = torch.tensor([max(1, int(round(f * n))) if self.keep_top else int(round(f * n))
                               for f in self.fractions])
        top = rank[:, None, :] < counts[None, :, None]  # (B, K, N)
        keep = top if self.keep_top else ~top
        preds = _answers_with_patches(model, images, questions, keep.to(images.device))
        curves = _scores(preds, records, len(self.fractions), scorer)
        return CurveScores(np.array([auc(c) for c in curves]), np.asarray(self.fractions), curves)


@register("vqa_keep_auc")
class VQAKeepAUC(_PatchSubsetVQA):
    """Accuracy when only the top-k fraction of patches (most relevant first, at least one) is
    read, for ten k in geometric steps from PNP-VQA's 20/576 to 1.0 (:data:`KEEP_FRACTIONS`);
    normalised AUC over the grid's points, i.e. over log k. Higher is better (Chefer et al.'s
    negative perturbation, seen from the kept side). Ties follow the sample's seeded
    permutation (:mod:`metrics._ties`); a non-finite map
    is not scored (counted by the runner)."""


@register("vqa_drop_auc")
class VQADropAUC(_PatchSubsetVQA):
    """Accuracy when the top-k fraction is removed first, k = 0, 0.1, …, 0.9; normalised AUC.
    Lower is better (positive perturbation)."""

    higher_is_better = False
    fractions = DROP_FRACTIONS
    keep_top = False


def pnp_draws(maps: torch.Tensor, num_patches: int, repeats: int, seed: int) -> torch.Tensor:
    """(B, repeats, N) kept-patch masks: ``num_patches`` indices per draw, sampled without
    replacement with probability ∝ the map's non-negative part, from a generator seeded with
    ``seed``. A tiny floor keeps an all-zero map drawable (then uniform)."""
    b = maps.shape[0]
    probs = maps.reshape(b, -1).clamp(min=0).double() + 1e-12
    g = torch.Generator().manual_seed(int(seed))
    keep = torch.zeros(b, repeats, probs.shape[1], dtype=torch.bool)
    for r in range(repeats):
        idx = torch.multinomial(probs, num_patches, replacement=False, generator=g)
        keep[:, r].scatter_(1, idx, True)
    return keep


@register("vqa_pnp_sample")
class VQAPnPSample(ModelMetric):
    """PNP-VQA-style selection: ``num_patches`` patch indices drawn without replacement with
    probability ∝ the (non-negative part of the) map, ``repeats`` times with a fixed seed; the
    value is the mean accuracy over the draws. ``num_patches`` defaults to PNP-VQA's 20 of 576
    patches scaled to the grid (:data:`PNP_FRACTION`). Higher is better."""

    needs_answers = True

    def __call__(self, model, images, questions, maps, records, scorer: Callable = None,
                 num_patches: int | None = None, repeats: int = 5, seed: int = 0,
                 **_) -> CurveScores:
        n = model.grid[0] * model.grid[1]
        m = num_patches or max(1, round(PNP_FRACTION * n))
        keep = pnp_draws(maps, m, repeats, seed)
        preds = _answers_with_patches(model, images, questions, keep.to(images.device))
        return CurveScores(_scores(preds, records, repeats, scorer).mean(1))
