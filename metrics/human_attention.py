"""Agreement with human attention: the rank correlation of Das et al., "Human Attention in Visual
Question Answering: Do Humans and Deep Networks Look at the Same Regions?", EMNLP 2016."""
from __future__ import annotations

from benchmark.core.maps import rank_correlation
from metrics import register
from metrics.base import ReferenceMetric

@register("human_rank_corr")
class HumanRankCorrelation(ReferenceMetric):
    """Spearman rank correlation between the map and the human attention map at 14 × 14.

    Both maps are resampled to 14 × 14 (:func:`benchmark.core.maps.to_human_grid`), their cells ranked, and Spearman's ρ
    taken (Das et al. 2016, who report an inter-human ρ of 0.623 on VQA-HAT val; the ``vqahat``
    dataset adds the run's own inter-human rows, model ``human``). The human map is the mean of
    the question's annotators' maps. Edge cases: a constant or non-finite
    map → NaN (no ranking).
    """

    reference = "human_map"

    def __call__(self, heatmap, reference) -> float:
        return rank_correlation(heatmap, reference)
