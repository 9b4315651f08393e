"""Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018), cascading from the output side of the model towards the input."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Protocol, Sequence

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from benchmark.core.options import Option
from benchmark.models.protocol import Member, VLModel
from benchmark.models.tensors import state_hash
from metrics import register
from metrics.base import SanityMetric


class Explainer(Protocol):
    """What the checks need of an attribution method (``methods.get(name)`` gives one, and so
    does ``.with_options(...)``); a metric receives it from the engine and never looks a method
    up by name."""

    options: Sequence[Any]
    sanity_options: Dict[str, Any]

    def __call__(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                 **kwargs: Any) -> torch.Tensor: ...

    def with_options(self, **options: Any) -> "Explainer": ...


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


def correlations(maps_a: torch.Tensor, maps_b: torch.Tensor) -> Dict[str, List[float]]:
    """Per sample: Spearman ρ of the signed maps, and of their absolute values (Adebayo et al.'s
    second variant: a map whose sign flips but whose magnitudes stay is unchanged there)."""
    return {"spearman": spearman(maps_a, maps_b),
            "spearman_abs_maps": spearman(maps_a.abs(), maps_b.abs())}


def explain(method: Explainer, model: VLModel, images, questions,
            **kwargs) -> torch.Tensor:
    """The maps of ``method`` with its sanity options applied (none of the shipped methods has
    any: the checks explain with the
    estimator that is ranked, Integrated Gradients' converged maps included)."""
    return method(model, images, questions, **{**method.sanity_options, **kwargs})


class SharedMaps:
    """``method`` with its maps computed once per (weights, side inputs, images, questions,
    call options): the sanity tests of one method explain the trained model with the run's seed
    four times (cascade, rerun, random logit, eMPRT) and the fully randomised model twice (the
    cascade's last stage, eMPRT), and every method is deterministic given its seed, so sharing
    the maps changes no statistic. Everything else is delegated to ``method``."""

    def __init__(self, method: Explainer) -> None:
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


def mprt(model: VLModel, method: Explainer, images: torch.Tensor, questions: Sequence[str],
         seed: int = 0, stages: Optional[int] = None, **method_kwargs: Any) -> List[Dict[str, Any]]:
    """Cascading model-parameter randomisation test.

    The maps of ``method`` on ``model`` are compared with its maps on a copy of the model
    whose stages (:meth:`~benchmark.models.protocol.VLModel.randomisation_stages`) are re-initialised one after another (cumulatively,
    from the output side), with one ``torch.Generator`` seeded with ``seed`` (also the
    method's ``seed``). ``model`` itself
    is not modified. ``stages`` limits the run to the first ``stages`` stages (default: all).

    Returns one dict per stage: ``{"stage": name, "index": i, "spearman": [per-sample float],
    "spearman_abs_maps": [...]}`` (:func:`correlations`; 0 for a sample whose original or
    randomised map is constant). A method that depends on the model's parameters shows
    correlations that fall as the cascade goes deeper; the runner reports the signed ρ, |ρ| (a
    map that inverts is as changed as one that decorrelates) and ρ of the absolute maps.
    """
    original = explain(method, model, images, questions, seed=seed, **method_kwargs)
    randomised = model.clone()
    generator = torch.Generator().manual_seed(int(seed))
    results = []
    for index, (name, members) in enumerate(randomised.randomisation_stages()[:stages]):
        randomise_(members, generator)
        maps = explain(method, randomised, images, questions, seed=seed, **method_kwargs)
        results.append({"stage": name, "index": index, **correlations(original, maps)})
    return results


def fully_randomised(model: VLModel, seed: int = 0) -> VLModel:
    """A copy of ``model`` with every cascade stage re-initialised (the cascade's last state)."""
    randomised = model.clone()
    generator = torch.Generator().manual_seed(int(seed))
    for _, members in randomised.randomisation_stages():
        randomise_(members, generator)
    return randomised


def question_swap(model: VLModel, method: Explainer, images: torch.Tensor,
                  questions: Sequence[str], seed: int = 0, **method_kwargs: Any) -> list:
    """Question sensitivity, for image–question matching: per sample, the correlations
    (:func:`correlations`) between the map that explains the sample's own question and the map
    that explains another sample's question on the same image (the next sample's, a fixed
    derangement). A map that reads the question changes: lower is better. (Sixt et al.'s random
    logit test explains another output of the same input: :func:`random_logit`.)"""
    other = list(questions[1:]) + list(questions[:1])
    return [{"stage": "question_swap", "index": 0, **correlations(
        explain(method, model, images, questions, seed=seed, **method_kwargs),
        explain(method, model, images, other, seed=seed, **method_kwargs))}]


#: the output a random-logit test explains instead: the ITM head's other class
OTHER_OUTPUT = "itm_nonmatch"


def random_logit(model: VLModel, method: Explainer, images: torch.Tensor,
                 questions: Sequence[str], seed: int = 0, **method_kwargs: Any) -> list:
    """Random Logit test (Sixt et al., ICML 2020): per sample, the correlations between the map
    of the output the method explains (its ``target``: the match logit by default) and the map
    of another output of the same input and model — the ITM head's no-match logit. A map that
    explains the output it is asked about changes; lower is better. A method that takes no
    output to explain (no ``target`` option: attention rollout, the baselines) has no such test
    and returns no stage."""
    if not any(o.name == "target" for o in method.options):
        return []
    other = method.with_options(target=OTHER_OUTPUT)
    return [{"stage": "random_logit", "index": 0, **correlations(
        explain(method, model, images, questions, seed=seed, **method_kwargs),
        explain(other, model, images, questions, seed=seed, **method_kwargs))}]


#: sMPRT's noisy copies per input (Quantus' default)
N_NOISE = 50


def smprt(model: VLModel, method: Explainer, images: torch.Tensor, questions: Sequence[str],
          seed: int = 0, n_noise: Optional[int] = None, noise: float = 0.1,
          **method_kwargs: Any) -> list:
    """Smooth MPRT (Hedström et al., 2023; Quantus' defaults): the maps are first averaged over
    ``n_noise`` (``N_NOISE``: 50) copies of each input with Gaussian noise of σ = ``noise`` ×
    that input's own value range (seeded per sample: a sample's score does not depend on the
    other images of its batch), which removes the explanation noise that plain MPRT mistakes
    for a change; per sample, the correlations between the smoothed maps of the model and of its
    fully randomised copy. Lower is better. Cost: 2 × ``n_noise`` explanations per question."""
    n_noise = N_NOISE if n_noise is None else n_noise
    flat = images.reshape(len(images), -1)
    sigma = (noise * (flat.max(1).values - flat.min(1).values)).view(-1, 1, 1, 1)
    # each sample's noise from its own generator (run seed, position among the sanity
    # questions), so that it does not depend on the other images of the batch
    gens = [torch.Generator().manual_seed(int(seed) * 100003 + i) for i in range(len(images))]
    noisy = [images + sigma * torch.stack([torch.randn(images.shape[1:], generator=g)
                                           for g in gens]).to(images)
             for _ in range(n_noise)]

    def smoothed(m: VLModel) -> torch.Tensor:
        return torch.stack([explain(method, m, x, questions, seed=seed, **method_kwargs)
                            for x in noisy]).mean(0)

    return [{"stage": "smprt", "index": 0,
             **correlations(smoothed(model), smoothed(fully_randomised(model, seed)))}]


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


def emprt(model: VLModel, method: Explainer, images: torch.Tensor, questions: Sequence[str],
          seed: int = 0, **method_kwargs: Any) -> list:
    """Efficient MPRT (Hedström et al., 2023; Quantus): per sample, the relative change of the
    explanation's complexity under full randomisation, (after − before) / before, the
    complexity being the entropy of a 100-bin histogram of the map
    (:func:`histogram_entropy`). A map of a randomised model should be noisier: higher is
    better, 0 means no change. NaN when the original map is constant (entropy 0)."""
    before = histogram_entropy(explain(method, model, images, questions, seed=seed,
                                       **method_kwargs))
    after = histogram_entropy(explain(method, fully_randomised(model, seed), images,
                                      questions, seed=seed, **method_kwargs))
    return [{"stage": "emprt", "index": 0, "relative_complexity_change": [
        float((a - b) / b) if b > 0 else float("nan") for a, b in zip(after, before)]}]


@register("sanity_mprt")
class CascadingRandomisation(SanityMetric):
    """Cascading model-parameter randomisation (Adebayo et al., NeurIPS 2018), :func:`mprt`:
    Spearman ρ per stage between the maps before and after. Lower is better (the maps should
    change)."""

    higher_is_better = False
    nominal_maps = 1 + 13 + 2
    rerun_row = True
    __call__ = staticmethod(mprt)


@register("question_swap")
class QuestionSwap(SanityMetric):
    """Question sensitivity: maps of another question on the same image, :func:`question_swap`.
    Lower is better."""

    higher_is_better = False
    __call__ = staticmethod(question_swap)


@register("random_logit")
class RandomLogitTest(SanityMetric):
    """Random-logit test (Sixt et al., ICML 2020): maps of another output (the no-match logit)
    of the same input, :func:`random_logit`. Lower is better."""

    higher_is_better = False
    __call__ = staticmethod(random_logit)


@register("smprt")
class SmoothRandomisation(SanityMetric):
    """Smooth MPRT (Hedström et al., 2023), :func:`smprt`. Lower is better."""

    higher_is_better = False
    n_noise = Option("n_noise", int, N_NOISE, "noisy copies per input (Quantus' default)")

    @property
    def nominal_maps(self) -> int:  # type: ignore[override]
        return 2 * self.n_noise

    def __call__(self, model: VLModel, method: Explainer, images: torch.Tensor,
                 questions: Sequence[str], seed: int = 0, **method_kwargs: Any) -> list:
        return smprt(model, method, images, questions, seed=seed, n_noise=self.n_noise,
                     **method_kwargs)


@register("emprt")
class EfficientRandomisation(SanityMetric):
    """Efficient MPRT (Hedström et al., 2023), :func:`emprt`: the relative change in
    complexity, (after − before) / before, under full randomisation. Higher is better."""

    __call__ = staticmethod(emprt)
