"""Deletion and insertion curves (Petsiuk et al., "RISE", BMVC 2018) on the patch grid."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF

from benchmark.models.protocol import VLModel
from benchmark.models.tensors import chunked
from benchmark.core.options import Option, at_least
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


def affected_patches(maps: torch.Tensor, counts: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """(B, S+1, N) bool: the top-``counts[k]`` patches at point k (ties: ``perm``)."""
    return ranks(patch_order(maps, perm))[:, None, :] < counts[None, :, None]


def to_pixels(patches: torch.Tensor, grid, image_hw) -> torch.Tensor:
    """(B, P, N) patch masks → (B, P, H, W) pixel masks."""
    gh, gw = grid
    ph, pw = image_hw[0] // gh, image_hw[1] // gw
    sel = patches.reshape(*patches.shape[:2], gh, gw)
    return sel.repeat_interleave(ph, 2).repeat_interleave(pw, 3)


def match_curve(model: VLModel, images: torch.Tensor, questions: Sequence[str],
                perturbed: torch.Tensor, chunk: int = 256,
                removed: Optional[torch.Tensor] = None,
                absent: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
    """Match probability of every perturbed image, (B, P), in batches of ``chunk`` images
    (within the model's ``max_batch_images``).

    ``perturbed`` is (B, P, 3, H, W); texts and the model's side inputs are repeated per sample
    (sample-major order). ``removed`` (B, P, N): the patches each perturbed image shows the
    substrate at, where the side inputs of ``absent`` read their absent value
    (:meth:`~benchmark.models.protocol.VLModel.removing`).
    """
    b, p = perturbed.shape[:2]
    flat = perturbed.reshape(b * p, *perturbed.shape[2:])
    text = model.tokenize(questions).repeat(p)
    view = model.for_batch(b).expanded(p)
    if removed is not None:
        view = view.removing(removed.reshape(b * p, -1), absent)

    def run(s: int, e: int) -> torch.Tensor:
        return view.select(slice(s, e)).match_probability(flat[s:e], text[s:e])

    with torch.no_grad():
        return chunked(run, b * p, model.images_per_forward(chunk)).reshape(b, p).cpu()


def whole_image_probabilities(model: VLModel, images: torch.Tensor, questions: Sequence[str],
                              fills: Dict[str, Optional[Substrate]], chunk: int = 256,
                              absent: Optional[Dict[str, torch.Tensor]] = None
                              ) -> Dict[str, torch.Tensor]:
    """Match probability, (B,) per name of ``fills``, with every patch replaced by the fill
    (``None``: the image as it is, its side inputs unchanged; otherwise every patch absent).
    Every map's deletion and insertion curve begins or ends at one of these, so the engine
    computes them once per question and model (``ends`` of the metrics)."""
    names = list(fills)
    perturbed = torch.stack([images if fills[k] is None else fills[k](images) for k in names], 1)
    n = model.grid[0] * model.grid[1]
    removed = torch.tensor([fills[k] is not None for k in names], device=images.device)
    removed = removed[None, :, None].expand(images.shape[0], len(names), n)
    probs = match_curve(model, images, questions, perturbed, chunk, removed, absent)
    return {k: probs[:, j] for j, k in enumerate(names)}


class _RiseMetric(ModelMetric):
    insertion = False
    #: the curve tracks the match probability: a question that does not match its image (ITM
    #: label 0) has none to lose or gain, so the runner excludes it with a note
    needs_match = True
    #: the curve's first and last points are :func:`whole_image_probabilities`
    shared = ("ends",)
    steps = Option("steps", int, 16, "steps S of the curve (S + 1 points, each step a further "
                   "round(N/S) patches, at least one; capped at the patch count N)",
                   validate=at_least(1))

    def __call__(self, model, images, questions, maps, records=(),
                 substrate: Substrate = torch.zeros_like, start: Substrate = blur,
                 chunk: int = 256, seed: int = 0,
                 absent: Optional[Dict[str, torch.Tensor]] = None,
                 ends: Optional[Dict[str, torch.Tensor]] = None, **_) -> CurveScores:
        """``ends``: :func:`whole_image_probabilities` of these samples, computed here when not
        given."""
        n = model.grid[0] * model.grid[1]
        counts = step_counts(n, self.steps)
        perm = tie_break(record_ids(records, len(maps)), n, seed)
        patches = affected_patches(maps.to(images.device), counts.to(images.device),
                                   perm.to(images.device))[:, 1:-1]
        affected = to_pixels(patches, model.grid, images.shape[-2:])[:, :, None]
        x = images[:, None]
        first, last = ("start", "image") if self.insertion else ("image", "substrate")
        if ends is None:
            fills = {"image": None, "substrate": substrate, "start": start}
            ends = whole_image_probabilities(model, images, questions,
                                             {k: fills[k] for k in (first, last)}, chunk, absent)
        if self.insertion:
            perturbed = torch.where(affected, x, start(images)[:, None])
        else:
            perturbed = torch.where(affected, substrate(images)[:, None], x)
        removed = ~patches if self.insertion else patches
        inner = match_curve(model, images, questions, perturbed, chunk, removed, absent)
        curves = torch.cat([ends[first].cpu()[:, None], inner, ends[last].cpu()[:, None]], 1)
        curves = curves.numpy()
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
