"""GQA's grounding score (Hudson & Manning, "GQA", CVPR 2019; the ``computeGroundingScore`` of
GQA's evaluation script)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from metrics import register
from metrics.base import ReferenceMetric


def _cell_overlap(lo: float, hi: float, n: int) -> np.ndarray:
    """Per cell of an n-cell unit interval: the fraction of the cell inside [lo, hi]."""
    edges = np.arange(n + 1) / n
    return np.clip(np.minimum(hi, edges[1:]) - np.maximum(lo, edges[:-1]), 0, None) * n


@register("gqa_grounding")
class GqaGrounding(ReferenceMetric):
    """The attention the map gives to the regions GQA's annotations point to.

    attention = the map's positive part over its own cells, normalised to sum 1 (GQA's script
    reads a probability map); score = Σ_regions Σ_cells attention(cell) · |cell ∩ region| /
    |cell|, the regions being the question's and the full answer's object boxes (and the whole
    image where GQA's rule adds it; :meth:`datasets.loader_gqa.GQADataset.grounding_regions`).
    As in GQA's script, a region listed twice counts twice and overlapping boxes count their
    overlap again, so the score can exceed 1; where it differs from ``relevance_mass`` on the
    evidence region (the union of the same boxes, at pixel level after bilinear upsampling),
    the difference is those repeats and the cell-level overlap. GQA indexes its map [x][y];
    ours is [row][column] and is read as such, so the cells are the same places. Edge cases: no
    region, no positive attention or a non-finite map → NaN.
    """

    reference = "gqa_regions"

    def __call__(self, heatmap, reference: Sequence[Sequence[float]]) -> float:
        att = np.asarray(heatmap, dtype=np.float64)
        if not len(reference) or not np.isfinite(att).all():
            return float("nan")
        att = np.clip(att, 0, None)
        if att.sum() <= 0:
            return float("nan")
        att = att / att.sum()
        gh, gw = att.shape
        return float(sum((att * np.outer(_cell_overlap(y0, y1, gh),
                                         _cell_overlap(x0, x1, gw))).sum()
                         for x0, y0, x1, y1 in reference))
