"""ROAD: RemOve And Debias (Rong et al., "A consistent and efficient evaluation strategy for
attribution methods", ICML 2022), with Quantus' noisy linear imputation."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from benchmark.core.options import Option, at_least
from benchmark.core.seeds import sample_rng
from metrics import register
from metrics._ties import patch_order, ranks, record_ids, tie_break
from metrics.base import CurveScores, ModelMetric
from metrics.curves import auc
from metrics.perturbation import match_curve, step_counts, to_pixels, whole_image_probabilities

#: the purpose of the imputation noise (:func:`benchmark.core.seeds.sample_rng`)
NOISE = 41


def impute(image: torch.Tensor, gone: torch.Tensor, noise: np.ndarray) -> torch.Tensor:
    """``image`` (C, H, W) with the pixels ``gone`` (H, W) bool replaced by ROAD's noisy linear
    imputation: each is the weighted mean of its 8 neighbours (direct 1/6, diagonal 1/12), all
    solved at once (Quantus' ``noisy_linear_imputation`` without its noise), plus ``noise``
    (C, H, W) at those pixels (drawn here, seeded, instead of from NumPy's global generator)."""
    from quantus.functions.perturb_func import noisy_linear_imputation  # imports in seconds

    idx = np.flatnonzero(gone.cpu().numpy())
    if idx.size == 0:
        return image
    arr = image.detach().cpu().double().numpy()
    out = noisy_linear_imputation(arr, idx, noise=0.0).reshape(arr.shape[0], -1)
    out[:, idx] += noise.reshape(arr.shape[0], -1)[:, idx]
    return torch.from_numpy(out.reshape(arr.shape)).to(image)


class _Road(ModelMetric):
    most_first = True
    needs_match = True
    shared = ("ends",)
    steps = Option("steps", int, 5, "points of the curve: k/S of the patches removed, "
                   "k = 0 … S−1 (default 20% steps up to 80%, for the run's budget: a sparse "
                   "solve per point; ROAD's own grid is 10: 10% steps up to 90%)",
                   validate=at_least(2))
    noise = Option("noise", float, 0.01, "σ of the Gaussian noise on imputed pixels, in the "
                   "model's normalised input space (ROAD's 0.01)")

    def __call__(self, model, images, questions, maps, records=(), seed: int = 0,
                 chunk: int = 256, absent: Optional[Dict[str, torch.Tensor]] = None,
                 ends: Optional[Dict[str, torch.Tensor]] = None, **_) -> CurveScores:
        n = model.grid[0] * model.grid[1]
        ids = record_ids(records, len(maps))
        counts = step_counts(n, self.steps)[:-1]  # never all: the imputation needs neighbours
        perm = tie_break(ids, n, seed)
        order = patch_order(maps if self.most_first else -maps, perm)
        patches = ranks(order)[:, None, :] < counts[None, 1:, None]  # (B, S−1, N)
        gone = to_pixels(patches, model.grid, images.shape[-2:])
        perturbed = torch.stack([self._imputed(images[i], gone[i], ids[i], seed)
                                 for i in range(len(maps))])
        if ends is None:
            ends = whole_image_probabilities(model, images, questions, {"image": None}, chunk,
                                             absent)
        inner = match_curve(model, images, questions, perturbed.to(images), chunk,
                            patches.to(images.device), absent)
        curves = torch.cat([ends["image"].cpu()[:, None], inner], 1).double().numpy()
        return CurveScores(np.array([auc(c) for c in curves]), (counts.double() / n).numpy(),
                           curves)

    def _imputed(self, image: torch.Tensor, gone: torch.Tensor, sid: str,
                 seed: int) -> torch.Tensor:
        """(P, C, H, W): the image imputed at each point's removed pixels ``gone`` (P, H, W);
        the noise of a point is the same field for every method (common random numbers)."""
        out = []
        for k in range(gone.shape[0]):
            noise = sample_rng(seed, sid, NOISE, k).standard_normal(image.shape) * self.noise
            out.append(impute(image, gone[k], noise))
        return torch.stack(out)


@register("road_morf")
class RoadMoRF(_Road):
    """ROAD, most relevant first: remove the top k/S of the patches (k = 0 … S−1; ties in the
    sample's seeded permutation), replace their pixels by noisy linear imputation from the
    pixels kept (Rong et al.: the imputed region carries no shape of what was removed, so the
    drop is not the model reacting to a mask's outline), track the match probability; AUC over
    [0, (S−1)/S] (normalised trapezoid). Lower is better. Removal never reaches every patch
    (the imputation needs a kept neighbour). The paper's curve is accuracy; ours is the match
    probability, as for deletion."""

    higher_is_better = False


@register("road_lerf")
class RoadLeRF(_Road):
    """ROAD, least relevant first: as ``road_morf`` with the patches removed in reverse order
    (the least relevant first). Higher is better: a faithful map keeps the evidence to the
    end. Rong et al.'s consistency check: MoRF and LeRF should rank methods alike."""

    most_first = False

