"""Deletion and insertion curves (Petsiuk et al., "RISE", BMVC 2018) on the patch grid."""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF

from benchmark.models.protocol import VLModel, chunked
from metrics import register
from metrics._ties import patch_order, ranks, record_ids, tie_break
from metrics.base import CurveScores, ModelMetric
from metrics.curves import auc

RISE_SIGMA_AT_224 = 5.0
Substrate = Callable[[torch.Tensor], torch.Tensor]


def blur(images: torch.Tensor) -> torch.Tensor:
    """Gaussian blur with RISE's σ = 5 px at 224 px, scaled to the image side."""
    sigma = RISE_SIGMA_AT_224 * images.shape[-1] / 224
    k = 2 * int(np.ceil(3 * sigma)) + 1
    return TF.gaussian_blur(images, [k, k], [sigma, sigma])


def channel_mean(images: torch.Tensor) -> torch.Tensor:
    """Each image's per-channel mean, everywhere."""
    return images.mean((2, 3), keepdim=True).expand_as(images)


#: what replaces removed patches (a function images → images of the same shape, injected into
#: the metrics that perturb): zeros in normalised space (the dataset-mean colour), the image's
#: mean colour, or the image blurred
SUBSTRATES: Dict[str, Substrate] = {"zero": torch.zeros_like, "mean": channel_mean, "blur": blur}


def step_counts(n_patches: int, steps: int) -> torch.Tensor:
    """Patches affected after each of the ``S + 1`` points: round(k·N/S), k = 0 … S."""
    s = min(steps, n_patches)  # at least one patch per step
    return torch.round(torch.arange(s + 1, dtype=torch.float64) * n_patches / s).long()


def _affected(maps: torch.Tensor, counts: torch.Tensor, grid, image_hw,
              perm: torch.Tensor) -> torch.Tensor:
    """(B, S+1, H, W) bool: pixels of the top-``counts[k]`` patches at point k (ties: ``perm``)."""
    b = maps.shape[0]
    sel = ranks(patch_order(maps, perm))[:, None, :] < counts[None, :, None]  # (B, S+1, N)
    gh, gw = grid
    ph, pw = image_hw[0] // gh, image_hw[1] // gw
    sel = sel.reshape(b, -1, gh, gw)
    return sel.repeat_interleave(ph, 2).repeat_interleave(pw, 3)


def match_curve(model: VLModel, images: torch.Tensor, questions: Sequence[str],
                perturbed: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Match probability of every perturbed image, (B, P), in batches of ``chunk`` images
    (within the model's ``max_batch_images``).

    ``perturbed`` is (B, P, 3, H, W); texts and the model's side inputs are repeated per sample
    (sample-major order).
    """
    b, p = perturbed.shape[:2]
    flat = perturbed.reshape(b * p, *perturbed.shape[2:])
    text = model.tokenize(questions).repeat(p)
    view = model.for_batch(b).expanded(p)

    def run(s: int, e: int) -> torch.Tensor:
        return view.select(slice(s, e)).match_probability(flat[s:e], text[s:e])

    with torch.no_grad():
        return chunked(run, b * p, model.images_per_forward(chunk)).reshape(b, p).cpu()


class _RiseMetric(ModelMetric):
    insertion = False
    #: the curve tracks the match probability: a question that does not match its image (ITM
    #: label 0) has none to lose or gain, so the runner excludes it with a note
    needs_match = True

    def __call__(self, model, images, questions, maps, records=(), steps: int = 16,
                 substrate: Substrate = torch.zeros_like, start: Substrate = blur,
                 chunk: int = 256, seed: int = 0, **_) -> CurveScores:
        n = model.grid[0] * model.grid[1]
        counts = step_counts(n, steps)
        perm = tie_break(record_ids(records, len(maps)), n, seed)
        affected = _affected(maps.to(images.device), counts.to(images.device), model.grid,
                             images.shape[-2:], perm.to(images.device))[:, :, None]
        x = images[:, None]
        if self.insertion:
            perturbed = torch.where(affected, x, start(images)[:, None])
        else:
            perturbed = torch.where(affected, substrate(images)[:, None], x)
        curves = match_curve(model, images, questions, perturbed, chunk).numpy()
        return CurveScores(np.array([auc(c) for c in curves]),
                           (counts.double() / n).numpy(), curves)


@register("deletion_auc")
class DeletionAUC(_RiseMetric):
    """Deletion: remove patches most relevant first (equal values in the sample's seeded
    permutation, :mod:`metrics._ties`), replaced by the substrate (default zeros in normalised
    space); the curve is the match probability at ``S + 1`` points (both ends
    included; each step removes round(N/S) patches, ≥ 1); AUC = normalised trapezoid. Lower is
    better: a faithful map destroys the match fastest."""

    higher_is_better = False


@register("insertion_auc")
class InsertionAUC(_RiseMetric):
    """Insertion: start from the blurred image (Gaussian, σ = 5 px at 224 px, scaled; or the
    injected ``start``: any of :data:`SUBSTRATES`) and put original patches back, most relevant first;
    same points and AUC as deletion. Higher is better."""

    insertion = True
