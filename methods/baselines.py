"""Reference maps: the baselines every real method must beat (seeded noise, a centre prior) and
the brackets that read the answer key (the target and evidence masks)."""
from __future__ import annotations

from typing import Sequence

import torch

from benchmark.models.protocol import VLModel
from methods import register
from methods.base import Attribution, Explanation, question_tokens
from benchmark.core.errors import NotApplicable


@register("random")
class RandomMap(Attribution):
    """Uniform noise on the patch grid, from ``torch.Generator().manual_seed(seed)``, and
    uniform noise over the question tokens after it (the chance reference of the token
    metrics; the maps are those drawn first, as before).

    Input: ``seed`` (the run passes one per batch; default 0). Same seed → same maps.
    """

    needs = ("seed",)
    is_baseline = True

    def attribute(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                  seed: int = 0) -> Explanation:
        g = torch.Generator().manual_seed(int(seed))
        maps = torch.rand((images.shape[0], *model.grid), generator=g)
        text = model.tokenize(questions)
        noise = torch.rand(text.input_ids.shape, generator=g)
        return Explanation(maps, tokens=question_tokens(noise, model, text))


@register("center")
class CenterPrior(Attribution):
    """An isotropic Gaussian at the grid centre, σ = a quarter of the grid side (no input used)."""
    per_sample = True
    is_baseline = True

    def attribute(self, model: VLModel, images: torch.Tensor,
                  questions: Sequence[str]) -> torch.Tensor:
        gh, gw = model.grid
        ys = torch.arange(gh, dtype=torch.float32) - (gh - 1) / 2
        xs = torch.arange(gw, dtype=torch.float32) - (gw - 1) / 2
        sigma = max(gh, gw) / 4
        g = torch.exp(-(ys[:, None] ** 2 + xs[None, :] ** 2) / (2 * sigma ** 2))
        return g.expand(images.shape[0], gh, gw).clone()


def pooled(masks, grid) -> torch.Tensor:
    """(B, gh, gw): the fraction of each patch inside each (H, W) bool mask (any size)."""
    pool = torch.nn.functional.adaptive_avg_pool2d
    return torch.stack([pool(torch.as_tensor(m, dtype=torch.float32)[None], grid)[0]
                        for m in masks])


@register("oracle")
class OracleMask(Attribution):
    """The ground-truth target mask pooled to the grid (fraction of each patch inside it): the
    upper bracket of the pointing game and the downstream metrics, and the reference row that
    shows how far a metric rewards finding the question's objects alone. Needs ``masks`` (one
    (H, W) bool array per image, any size), which the runner passes; not applicable without
    ground truth."""
    per_sample = True
    needs = ("masks",)  # the variation point: which ground-truth mask the map is
    is_baseline = True

    def attribute(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                  **given) -> torch.Tensor:
        (key,) = self.needs
        if given.get(key) is None:
            raise NotApplicable(f"{self.name} needs ground-truth {key.replace('_', ' ')}")
        return pooled(given[key], model.grid)


@register("evidence_oracle")
class EvidenceOracle(OracleMask):
    """The evidence mask (every object the answer depends on: the target and, for a spatial
    relation, its anchor) pooled to the grid: a second reference row that reads the answer key.
    Needs ``evidence_masks``; not applicable without ground truth."""
    needs = ("evidence_masks",)
