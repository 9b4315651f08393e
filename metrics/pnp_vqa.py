"""PNP-VQA's own downstream: its captioner and answerer, with the patch sampling driven by the
method's map (see :mod:`benchmark.models.pnp_vqa_pipeline`)."""
from __future__ import annotations

from typing import Callable

import numpy as np

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
                 seed: int = 0, pnp=None, encoded=None,
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
            answers, found = pnp.answers(x, questions, maps, ids, m, self.captions, seed,
                                         encoded)
            curves[:, j] = [scorer(a, r.answers) for a, r in zip(answers, records)]
            if MULTIPLES[j] == 1.0:
                distinct[:] = found
        return CurveScores(curves[:, MULTIPLES.index(1.0)], np.asarray(counts, float) / n,
                           curves, {"pnp_distinct_captions": distinct})
