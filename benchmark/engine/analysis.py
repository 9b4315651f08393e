"""The analysis of the embedded default, fixed before any of its numbers were seen
(``ANALYSIS.md`` says the same in words). The report's first screen, its sentences and the
README's three answers follow it; :mod:`benchmark.engine.comparisons` holds the test families.

Primary models: the plain pair, trained with no loss on attention and no evidence-guided views
(so no method reads a quantity the model was trained toward), with two training-seed
replicates each for the stability of rankings. The supervised pair is reported beside them,
labelled "trained with word grounding", never alone.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

#: model → its role in the analysis (the order is the report's: primary first)
ROLES: Dict[str, str] = {
    "blip-itm-tiny-plain": "primary",
    "difnet-itm-tiny-plain": "primary",
    "blip-itm-tiny-plain-vit1": "depth control (the primary baseline with the fused model's "
                                "1-block ViT)",
    "blip-itm-tiny": "trained with word grounding",
    "difnet-itm-tiny": "trained with word grounding",
    "blip-itm-tiny@init": "untrained control",
    "difnet-itm-tiny@init": "untrained control",
    **{f"{m}-plain-s{s}": "seed replicate" for m in ("blip-itm-tiny", "difnet-itm-tiny")
       for s in (1, 2)},
}
PRIMARY = tuple(m for m, role in ROLES.items() if role == "primary")
#: the seed replicates of each primary model (the stability table)
REPLICATES: Dict[str, Tuple[str, ...]] = {m: (m, f"{m}-s1", f"{m}-s2") for m in PRIMARY}

#: the metrics the three answers rest on: faithfulness to the model's own score (deletion,
#: insertion), reliance the answer key cannot predict (objects outside the target), grounding
#: (pointing above chance) and PNP-VQA's downstream accuracy
PRIMARY_METRICS = ("deletion_auc", "insertion_auc", "object_faithfulness_outside_target",
                   "pointing_game_above_chance", "pnp_vqa_accuracy")
#: reported beside them on the first screen, not the basis of an answer
SECONDARY_METRICS = ("relevance_rank", "vqa_keep_auc", "object_faithfulness",
                     "counterfactual_pointing")

#: the model comparisons of the fusion question, each differing in one factor, first first
MODEL_PAIRS: List[Tuple[str, str, str]] = [
    ("difnet-itm-tiny-plain", "blip-itm-tiny-plain-vit1",
     "the fusion encoder and its segmentation stream (same 1-block ViT)"),
    ("difnet-itm-tiny-plain", "blip-itm-tiny-plain",
     "the fusion encoder against two more ViT blocks (equal capacity)"),
    ("blip-itm-tiny", "blip-itm-tiny-plain", "word grounding in training"),
    ("difnet-itm-tiny", "difnet-itm-tiny-plain", "word grounding in training"),
]

ALPHA = 0.05
TEST = ("two-sided paired sign-flip permutation test of the mean difference (exact up to 13 "
        "pairs, else 9999 seeded sign patterns), Holm-corrected within its family")
#: what a sentence may call "significantly ahead"
AHEAD = ("the mean paired difference favours it by the metric's direction and the "
         f"Holm-corrected p of that mean is below {ALPHA}")


def role(model: str) -> str:
    """The model's role (``"other"`` for a model the analysis does not name)."""
    return ROLES.get(model, "other")


def in_plan_order(models: Sequence[str]) -> List[str]:
    """``models`` with the analysis's own first, in its order, then the others by name."""
    known = [m for m in ROLES if m in models]
    return known + sorted(m for m in models if m not in ROLES)


def declared_pairs(models: Sequence[str]) -> List[Tuple[str, str, str]]:
    """The analysis's model pairs that the run has both models of."""
    return [p for p in MODEL_PAIRS if p[0] in models and p[1] in models]


def headline(metrics: Sequence[str]) -> List[str]:
    """The first screen's metrics that a run computed: primary, then secondary."""
    return [m for m in PRIMARY_METRICS + SECONDARY_METRICS if m in metrics]
