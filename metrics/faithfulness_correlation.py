"""Faithfulness correlation (Bhatt et al., "Evaluating and aggregating feature-based model
explanations", IJCAI 2020; Quantus ``FaithfulnessCorrelation``)."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import torch

from benchmark.core.options import Option, at_least, fraction
from benchmark.core.seeds import sample_rng
from metrics import register
from metrics._ties import record_ids
from metrics.base import CurveScores, ModelMetric
from metrics.perturbation import Substrate, match_curve, to_pixels, whole_image_probabilities

#: the purpose under which a sample's subsets are drawn (:func:`benchmark.core.seeds.sample_rng`)
SUBSETS = 31


def draw_subsets(sample_ids: Sequence[str], n: int, size: int, runs: int, seed: int,
                 purpose: int = SUBSETS) -> torch.Tensor:
    """(B, runs, n) bool: per sample, ``runs`` uniformly drawn sets of ``size`` of the ``n``
    patches, seeded by (run seed, sample id, ``purpose``): every method is scored on the same
    sets."""
    out = np.zeros((len(sample_ids), runs, n), dtype=bool)
    for i, sid in enumerate(sample_ids):
        rng = sample_rng(seed, sid, purpose)
        for r in range(runs):
            out[i, r, rng.choice(n, size, replace=False)] = True
    return torch.from_numpy(out)


def subset_probabilities(model, images: torch.Tensor, questions: Sequence[str],
                         sample_ids: Sequence[str], runs: int, subset: float, seed: int,
                         substrate: Substrate = torch.zeros_like, chunk: int = 256,
                         absent: Optional[Dict[str, torch.Tensor]] = None
                         ) -> Dict[str, torch.Tensor]:
    """What faithfulness correlation and infidelity read of the model, none of it depending on
    the map (so the engine computes it once per question for every method, the ``subsets``
    shared input): ``removed`` (B, runs, N) the drawn patch sets (:func:`draw_subsets`, of
    ``round(subset · N)`` patches), ``probs`` (B, runs) the match probability with each set
    showing the substrate (a fused model's segmentation stream reading it as absent), and
    ``image`` (B,) the probability of the image as it is."""
    n = model.grid[0] * model.grid[1]
    size = min(n, max(1, round(subset * n)))
    removed = draw_subsets(sample_ids, n, size, runs, seed).to(images.device)
    affected = to_pixels(removed, model.grid, images.shape[-2:])[:, :, None]
    perturbed = torch.where(affected, substrate(images)[:, None], images[:, None])
    whole = whole_image_probabilities(model, images, questions, {"image": None}, chunk, absent)
    return {"removed": removed.cpu(), "image": whole["image"].cpu().double(),
            "probs": match_curve(model, images, questions, perturbed, chunk, removed,
                                 absent).double()}


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of (B, R) arrays; NaN where a row is constant."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1), np.nan)


class RandomSubsetMetric(ModelMetric):
    """A metric of the drops under random patch sets (:func:`subset_probabilities`), which
    every method's call shares: its options ``runs`` and ``subset`` are part of what is
    shared, so two such metrics with the same values read one computation."""

    needs_match = True
    shared = ("subsets",)
    shared_options = ("runs", "subset")
    runs = Option("runs", int, 32, "random patch sets per question (Quantus: 100; captum's "
                  "n_perturb_samples)", validate=at_least(3))
    subset = Option("subset", float, 0.25, "share of the patches in each set",
                    validate=fraction)

    def __call__(self, model, images, questions, maps, records=(),
                 substrate: Substrate = torch.zeros_like, chunk: int = 256, seed: int = 0,
                 absent: Optional[Dict[str, torch.Tensor]] = None,
                 subsets: Optional[Dict[str, torch.Tensor]] = None, **_) -> CurveScores:
        """``subsets``: :func:`subset_probabilities` of these samples (the engine's shared
        input), computed here when not given."""
        if subsets is None:
            subsets = subset_probabilities(model, images, questions,
                                           record_ids(records, len(images)), self.runs,
                                           self.subset, seed, substrate, chunk, absent)
        return CurveScores(self.score(subsets, maps.reshape(len(maps), -1).double().cpu()))

    def score(self, subsets: Dict[str, torch.Tensor], maps: torch.Tensor) -> np.ndarray:
        """(B,) values from the sets, drops and the (B, N) maps."""
        raise NotImplementedError


@register("faithfulness_correlation")
class FaithfulnessCorrelation(RandomSubsetMetric):
    r"""Pearson correlation, over random patch subsets :math:`S`, between the relevance a map
    gives :math:`S` and the drop of the match probability when :math:`S` is removed:

    .. math:: \rho\Big(\sum_{p \in S} a_p,\; f(x) - f(x_{S \leftarrow \text{substrate}})\Big)

    over ``runs`` subsets of ``round(subset · N)`` patches each, drawn per sample from (run
    seed, sample id) — the same subsets for every method. Removed patches show the run's
    deletion substrate, and a fused model's segmentation stream reads them as absent, as in
    deletion. Quantus' definition (tested equal on shared subsets) on the patch grid rather
    than on pixels, with the match probability as :math:`f`. Higher is better (in [−1, 1]).
    Unlike deletion it credits the map's *values*, not only their order, and it penalises
    relevance on patches whose removal does not matter. Edge cases: a map constant over every
    drawn subset's sum, or a model whose score no subset moves → NaN (excluded).
    """

    def score(self, subsets: Dict[str, torch.Tensor], maps: torch.Tensor) -> np.ndarray:
        drops = subsets["image"][:, None].numpy() - subsets["probs"].numpy()
        return pearson((maps[:, None] * subsets["removed"]).sum(-1).numpy(), drops)
