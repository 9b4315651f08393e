"""Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018), cascading from the output side of the model towards the input."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

import methods
from benchmark.models.protocol import Member, VLModel, state_hash
from methods.base import Attribution
from metrics import register
from metrics.base import SanityMetric

#: a method by registered name, or a configured instance (``methods.get(n).with_options(...)``)
MethodRef = Union[str, Attribution]


@torch.no_grad()
def randomise_(members: Sequence[Member], generator: torch.Generator) -> None:
    """Re-initialise in place: N(0, 0.02) for tensors of dim ≥ 2, ones for LayerNorm weights,
    zeros for every other (bias-like) 1-d parameter."""

    def fill(p: nn.Parameter, layer_norm_weight: bool) -> None:
        if layer_norm_weight:
            p.fill_(1.0)
        elif p.dim() >= 2:
            p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
        else:
            p.zero_()

    for member in members:
        if isinstance(member, nn.Parameter):
            fill(member, False)
            continue
        for mod in member.modules():
            for name, p in mod.named_parameters(recurse=False):
                fill(p, isinstance(mod, nn.LayerNorm) and name == "weight")


def spearman(maps_a: torch.Tensor, maps_b: torch.Tensor) -> List[float]:
    """Per-sample Spearman rank correlation of two (B, gh, gw) map batches. A constant map
    carries no ranking, so its correlation with anything is 0 (not NaN: a randomised model
    whose maps collapse to a constant is the largest change, and must not drop out)."""
    out = []
    for a, b in zip(maps_a.reshape(len(maps_a), -1).double().numpy(),
                    maps_b.reshape(len(maps_b), -1).double().numpy()):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            out.append(0.0)
        else:
            out.append(float(spearmanr(a, b).statistic))
    return out


def explain(method: MethodRef, model: VLModel, images, questions,
            **kwargs) -> torch.Tensor:
    """The maps of ``method`` (a registered name, or a configured instance) with its sanity
    options (e.g. IG's fixed step count) applied."""
    method = methods.get(method) if isinstance(method, str) else method
    return method(model, images, questions, **{**method.sanity_options, **kwargs})


class SharedMaps:
    """``method`` with its maps computed once per (weights, side inputs, images, questions,
    call options): the sanity tests of one method explain the trained model with the run's seed
    four times (cascade, rerun, random logit, eMPRT) and the fully randomised model twice (the
    cascade's last stage, eMPRT), and every method is deterministic given its seed, so sharing
    the maps changes no statistic. Everything else is delegated to ``method``."""

    def __init__(self, method: Attribution) -> None:
        self.method = method
        self._maps: Dict[tuple, torch.Tensor] = {}
        self._held: List[torch.Tensor] = []  # keyed by id: kept alive so no id is reused

    def __getattr__(self, name: str) -> Any:
        return getattr(self.method, name)

    def __call__(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                 **kwargs: Any) -> torch.Tensor:
        key = (state_hash(model.module), tuple(sorted((k, id(v)) for k, v in model.inputs.items())),
               id(images), tuple(questions), tuple(sorted(kwargs.items())))
        if key not in self._maps:
            self._held.append(images)
            self._maps[key] = self.method(model, images, questions, **kwargs)
        return self._maps[key]


def mprt(model: VLModel, method: MethodRef, images: torch.Tensor, questions: Sequence[str],
         seed: int = 0, stages: Optional[int] = None, **method_kwargs: Any) -> List[Dict[str, Any]]:
    """Cascading model-parameter randomisation test.

    The maps of ``method`` on ``model`` are compared with its maps on a copy of the model
    whose stages (:meth:`~benchmark.models.protocol.VLModel.randomisation_stages`) are re-initialised one after another (cumulatively,
    from the output side), with one ``torch.Generator`` seeded with ``seed`` (also the
    method's ``seed``). ``model`` itself
    is not modified. ``stages`` limits the run to the first ``stages`` stages (default: all).

    Returns one dict per stage: ``{"stage": name, "index": i, "spearman": [per-sample float]}``
    (0 for a sample whose original or randomised map is constant). A method that depends on
    the model's parameters shows correlations that fall as the cascade goes deeper; the runner
    reports the signed ρ and |ρ| (a map that inverts is as changed as one that decorrelates).
    """
    original = explain(method, model, images, questions, seed=seed, **method_kwargs)
    randomised = model.clone()
    generator = torch.Generator().manual_seed(int(seed))
    results = []
    for index, (name, members) in enumerate(randomised.randomisation_stages()[:stages]):
        randomise_(members, generator)
        maps = explain(method, randomised, images, questions, seed=seed, **method_kwargs)
        results.append({"stage": name, "index": index, "spearman": spearman(original, maps)})
    return results


def fully_randomised(model: VLModel, seed: int = 0) -> VLModel:
    """A copy of ``model`` with every cascade stage re-initialised (the cascade's last state)."""
    randomised = model.clone()
    generator = torch.Generator().manual_seed(int(seed))
    for _, members in randomised.randomisation_stages():
        randomise_(members, generator)
    return randomised


def random_logit(model: VLModel, method: MethodRef, images: torch.Tensor,
                 questions: Sequence[str], seed: int = 0, **method_kwargs: Any) -> List[float]:
    """Random Logit test (Sixt et al., ICML 2020), for image–question matching: per sample,
    the Spearman ρ between the map that explains the sample's own question and the map that
    explains another sample's question on the same image (the next sample's, a fixed
    derangement). A map that reads the question changes: lower is better."""
    other = list(questions[1:]) + list(questions[:1])
    return spearman(explain(method, model, images, questions, seed=seed, **method_kwargs),
                    explain(method, model, images, other, seed=seed, **method_kwargs))


def smprt(model: VLModel, method: MethodRef, images: torch.Tensor, questions: Sequence[str],
          seed: int = 0, n_noise: int = 4, noise: float = 0.1, **method_kwargs: Any) -> List[float]:
    """Smooth MPRT (Hedström et al., 2023): the maps are first averaged over ``n_noise`` copies
    of the input with Gaussian noise (σ = ``noise`` × the batch's value range, seeded), which
    removes the explanation noise that plain MPRT mistakes for a change; per sample, Spearman ρ
    between the smoothed maps of the model and of its fully randomised copy. Lower is better."""
    g = torch.Generator().manual_seed(int(seed))
    sigma = noise * float(images.max() - images.min())
    noisy = [images + sigma * torch.randn(images.shape, generator=g).to(images)
             for _ in range(n_noise)]

    def smoothed(m: VLModel) -> torch.Tensor:
        return torch.stack([explain(method, m, x, questions, seed=seed, **method_kwargs)
                            for x in noisy]).mean(0)

    return spearman(smoothed(model), smoothed(fully_randomised(model, seed)))


def histogram_entropy(maps: torch.Tensor, bins: int = 100) -> np.ndarray:
    """Per-sample Shannon entropy (nats) of a ``bins``-bin histogram of the map's values over
    its own range; 0 for a constant map."""
    out = []
    for m in maps.reshape(len(maps), -1).double().numpy():
        if np.ptp(m) == 0:
            out.append(0.0)
            continue
        counts, _ = np.histogram(m, bins=bins)
        p = counts[counts > 0] / counts.sum()
        out.append(float(-(p * np.log(p)).sum()))
    return np.asarray(out)


def emprt(model: VLModel, method: MethodRef, images: torch.Tensor, questions: Sequence[str],
          seed: int = 0, **method_kwargs: Any) -> List[float]:
    """Efficient MPRT (Hedström et al., 2023): per sample, the explanation's complexity after
    full randomisation over its complexity on the trained model, the complexity being the
    entropy of a 100-bin histogram of the map (:func:`histogram_entropy`). A map of a
    randomised model should be noisier: higher is better, 1 means no change. NaN when the
    original map is constant (entropy 0)."""
    before = histogram_entropy(explain(method, model, images, questions, seed=seed,
                                       **method_kwargs))
    after = histogram_entropy(explain(method, fully_randomised(model, seed), images,
                                      questions, seed=seed, **method_kwargs))
    return [float(a / b) if b > 0 else float("nan") for a, b in zip(after, before)]


@register("sanity_mprt")
class CascadingRandomisation(SanityMetric):
    """Cascading model-parameter randomisation (Adebayo et al., NeurIPS 2018), :func:`mprt`:
    Spearman ρ per stage between the maps before and after. Lower is better (the maps should
    change)."""

    higher_is_better = False
    __call__ = staticmethod(mprt)


@register("random_logit")
class RandomLogitTest(SanityMetric):
    """Random-logit test (Sixt et al., ICML 2020), :func:`random_logit`. Lower is better."""

    higher_is_better = False
    __call__ = staticmethod(random_logit)


@register("smprt")
class SmoothRandomisation(SanityMetric):
    """Smooth MPRT (Hedström et al., 2023), :func:`smprt`. Lower is better."""

    higher_is_better = False
    __call__ = staticmethod(smprt)


@register("emprt")
class EfficientRandomisation(SanityMetric):
    """Efficient MPRT (Hedström et al., 2023), :func:`emprt`: the complexity ratio after/before
    full randomisation. Higher is better."""

    __call__ = staticmethod(emprt)
