"""PNP-VQA's own downstream: its captioner and answerer, with the patch sampling driven by the
method's map (see :mod:`benchmark.models.pnp_vqa_pipeline`)."""
from __future__ import annotations

import hashlib
from typing import Callable, List, Tuple

import numpy as np
import torch

from benchmark.models.pnp_vqa_pipeline import PNP_PATCHES
from benchmark.core.errors import NotApplicable
from benchmark.core.options import Option, at_least
from metrics import register
from metrics.base import CurveScores, ModelMetric

#: the curve's points: multiples of PNP-VQA's patches per caption (20 of 576)
MULTIPLES = (0.25, 0.5, 1.0, 2.0)


@register("pnp_vqa_accuracy")
class PnpVqaAccuracy(ModelMetric):
    """Accuracy of PNP-VQA's answer (the dataset's scoring: official VQA accuracy, or exact
    match) when each of its ``captions`` captions reads PNP-VQA's share of the
    captioner's patches (20 of 576), drawn without replacement with probability ∝ the map's
    positive part. The curve repeats it at ¼, ½, 1 and 2 times that share (x: the fraction of
    the captioner's patches per caption). Captions and draws are seeded per question from the
    run's seed, the same for every method (paired comparisons). Every question's answerer reads
    exactly ``captions`` passages whatever the map (:mod:`benchmark.models.pnp_vqa_pipeline`); the
    ``pnp_distinct_captions`` row says how many were distinct (at PNP-VQA's share). Higher is
    better. Not applicable without a pipeline (``--pnp-vqa NAME``)."""

    needs_pnp = True
    shared = ("encoded",)
    captions = Option("captions", int, 20, "captions per question and curve point (PNP-VQA: "
                      "100, about four times the cost)", validate=at_least(1))

    def __call__(self, model, images, questions, maps, records, scorer: Callable = None,
                 seed: int = 0, pnp=None, encoded=None, memo=None,
                 **_) -> CurveScores:
        if pnp is None:
            raise NotApplicable("no PNP-VQA captioner and answerer (pass --pnp-vqa NAME)")
        n = pnp.grid[0] * pnp.grid[1]
        counts = [max(1, round(f * PNP_PATCHES * n / 576)) for f in MULTIPLES]
        x = pnp.preprocessing([r.image for r in records]).to(pnp.device)
        if encoded is None:  # the same tokens for every curve point
            encoded = pnp.encode(x)
        ids = [r.sample_id for r in records]
        curves = np.zeros((len(records), len(counts)))
        distinct = np.zeros(len(records))
        for j, m in enumerate(counts):
            answers, found = memoised_answers(pnp, memo, x, questions, maps, ids, m,
                                              self.captions, seed, encoded)
            curves[:, j] = [scorer(a, r.answers) for a, r in zip(answers, records)]
            if MULTIPLES[j] == 1.0:
                distinct[:] = found
        return CurveScores(curves[:, MULTIPLES.index(1.0)], np.asarray(counts, float) / n,
                           curves, {"pnp_distinct_captions": distinct})


def memoised_answers(pnp, memo, images, questions, maps, ids, num_patches: int,
                     num_captions: int, seed: int, encoded) -> Tuple[List[str], List[int]]:
    """``pnp.answers`` with each question's answer kept in ``memo`` (a unit cache: ``get`` and
    ``put``; ``None``: none) under a digest of everything it reads — the pipeline and its
    settings, the question, its image's id, its map's bytes, the patch and caption counts, the
    seed. A map that does not depend on the model (``random``, ``center``, the masks) is then
    answered once for every model of a run: a question's captions and answer do not depend on
    the other questions of its batch, so the rows are those computed."""
    if memo is None:
        return pnp.answers(images, questions, maps, ids, num_patches, num_captions, seed, encoded)
    keys = [hashlib.sha256(repr((pnp.name, pnp.settings, q, i, num_patches, num_captions,
                                 int(seed))).encode() + maps[k].float().cpu().numpy().tobytes())
            .hexdigest() for k, (q, i) in enumerate(zip(questions, ids))]
    known = {k: memo.get("pnp-answers", key) for k, key in enumerate(keys)}
    todo = [k for k, v in known.items() if v is None]
    if todo:
        sel = torch.tensor(todo)
        answers, found = pnp.answers(images[sel], [questions[k] for k in todo], maps[sel],
                                     [ids[k] for k in todo], num_patches, num_captions, seed,
                                     None if encoded is None else encoded[sel])
        for k, a, f in zip(todo, answers, found):
            known[k] = [a, int(f)]
            memo.put(known[k], "pnp-answers", keys[k])
    return [known[k][0] for k in range(len(keys))], [known[k][1] for k in range(len(keys))]
