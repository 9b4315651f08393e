"""Integrated Gradients on the pixels, via captum, pooled to the patch grid, with its
convergence checked per sample."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F

from benchmark.models.protocol import VLModel
from benchmark.models.tensors import Preprocessing, TextBatch, chunked
from methods import register
from methods._adaptive_path import integrate
from methods._token_ig import token_ig
from methods.base import Attribution, Diagnostic, Explanation, Option, target_score, to_grid
from benchmark.core.errors import NotApplicable

BASELINES = ("blur", "zero", "black", "expected")
RULES = ("adaptive", "uniform")
#: targets IG integrates (``answer`` would re-pick its answer at every point of the path)
PATH_TARGETS = ("itm", "itm_prob", "itm_nonmatch")
#: images per forward along the path when ``internal_batch_size`` is not given: captum would
#: otherwise expand every path by every step at once (16 images × 512 steps ≈ 17 GB)
CHUNK_IMAGES = 256


def path_score(model: VLModel, target: str, batch: int):
    """``(forward, side)``: ``forward(images, input_ids, attention_mask, *side) → (B,)`` score of
    ``target``, and the model's bound side inputs for a batch of ``batch`` images.

    Text and side inputs travel as tensors so that captum repeats them with the interpolated
    images (captum does not repeat Python lists or a model's bound inputs).
    """
    keys = [k for k in model.side_inputs if k in model.inputs]

    def forward(images, input_ids, attention_mask, *side):
        view = model.given(**dict(zip(keys, side)))
        return target_score(view, view.visual_tokens(images), TextBatch(input_ids, attention_mask),
                            target)

    return forward, tuple(model.side(k, batch) for k in keys)


@register("integrated_gradients")
class IntegratedGradientsMap(Attribution):
    r"""Integrated Gradients (Sundararajan et al., ICML 2017):

    .. math:: \mathrm{IG}_i(x) = (x_i - x'_i) \int_0^1
              \frac{\partial f(x' + \alpha (x - x'))}{\partial x_i} \, d\alpha

    summed over colour channels and the pixels of each patch, :math:`M(p) = \sum_{i \in p}
    \mathrm{IG}_i` (signed; positive supports the match). :math:`f` is the raw ITM match logit
    by default (``target="itm"``, what the gradient methods explain), the match probability
    (``"itm_prob"``) or the no-match logit (``"itm_nonmatch"``, the random-logit test's).

    Convergence: completeness says :math:`\sum_i \mathrm{IG}_i = f(x) - f(x')`; a map is valid
    once its relative completeness error is at most ``rel_tolerance`` (0.05), else it keeps its
    rows with a note and is left out of every mean. Two quadrature rules:

    - ``rule="adaptive"`` (default, :mod:`methods._adaptive_path`): nested nodes refined where
      the path needs it — each interval's local completeness error is known from its two nodes'
      gradients and scores, an interval is refined by its midpoint and every gradient already
      computed stays in the sum — until the *sum of the local errors* is at most the tolerance
      (never looser than the uniform rule's test), from 9 nodes up to ``max_steps`` nodes;
    - ``rule="uniform"``: captum's midpoint rule (``riemann_middle``) at ``n_steps`` (32),
      integrated again with twice the steps while the completeness gap exceeds the tolerance, up
      to ``max_steps`` (4096): the earlier estimator, kept as the reference. Its nodes do not
      nest, so a map that ends at 2048 steps has cost 32 + 64 + … + 2048 passes.

    Diagnostics per sample, returned with the maps: ``completeness_delta`` (|Σ M − Δf|),
    ``completeness_rel_delta`` (its ratio to |Δf|; for the adaptive rule the sum of the local
    errors over |Δf|, which bounds it), ``ig_steps`` (nodes or steps of the final integral, per
    path) and ``ig_passes`` (every gradient pass spent on the sample).

    Options: ``rule``, ``n_steps``, ``max_steps``, ``rel_tolerance``, ``target``, ``baseline`` —
    ``"blur"`` (default: the image under a strong Gaussian blur, σ = 1/8 of the side, which
    keeps the path among natural-looking images), ``"zero"`` (zeros in normalised space: the
    dataset-mean colour), ``"black"``, or ``"expected"`` — and ``internal_batch_size`` (images
    per pass; default: 256 within the model's ``max_batch_images``, which bounds memory
    whatever the step count reaches).

    ``"expected"`` is Expected Gradients (Erion et al., Nature MI 2021) with the data as the
    baseline distribution, integrated by quadrature instead of sampled α: the map is the mean of
    IG from ``n_references`` (4) other images of the same batch (sample i starts from images
    i + 1, i + 2, … cyclically), so :math:`\sum_i \mathrm{EG}_i = f(x) - \tfrac1K \sum_k
    f(x'_k)`. Its maps therefore depend on which images share a batch (fixed by the dataset
    order and ``--batch-size``); a batch of one image has no reference and raises
    :class:`NotApplicable`. Its relative error is summed over the K paths before the ratio.
    """

    rule = Option("rule", str, "adaptive", "quadrature: adaptive (nested nodes refined where "
                  "the path needs it) or uniform (captum's midpoint rule, steps doubled)", RULES)
    n_steps = Option("n_steps", int, 32, "uniform rule: first number of Riemann steps")
    max_steps = Option("max_steps", int, 4096,
                       "most nodes (adaptive) or steps (uniform) per path")
    rel_tolerance = Option("rel_tolerance", float, 0.05,
                           "largest relative completeness error that counts as converged")
    target = Option("target", str, "itm", "score explained: itm (match logit), itm_prob or "
                    "itm_nonmatch (the no-match logit)", PATH_TARGETS)
    baseline = Option("baseline", str, "blur", "path start: blur, zero, black or expected",
                      BASELINES)
    n_references = Option("n_references", int, 4, "expected gradients: baselines per sample")
    token_max_nodes = Option("token_max_nodes", int, 1025, "question-token IG: most nodes "
                             "of the adaptive rule per question, at most max_steps (0: no "
                             "token relevance)")
    internal_batch_size = Option("internal_batch_size", int, None,
                                 "images per forward along the path (default: "
                                 f"{CHUNK_IMAGES} within the model's --max-batch-images)")

    #: the sanity checks compare maps: no token path on their randomised models
    sanity_options = {"token_max_nodes": 0}

    @property
    def per_sample(self) -> bool:
        """Expected gradients reads other samples of the batch as its references."""
        return self.baseline != "expected"

    def attribute(self, model: VLModel, images: torch.Tensor,
                  questions: Sequence[str]) -> Explanation:
        b = images.shape[0]
        fn, side = path_score(model, self.target, b)
        text = model.tokenize(questions)
        # one straight path per (sample, baseline): K = 1 except for expected gradients
        owner, base = ig_paths(images, self.baseline, self.n_references, model.preprocessing)
        args = (text.input_ids[owner], text.attention_mask[owner]) + tuple(t[owner] for t in side)
        limit = model.images_per_forward(self.internal_batch_size or CHUNK_IMAGES)
        patch = images.shape[-1] // model.grid[1]
        if self.rule == "adaptive":
            maps, total, change, steps, done = integrate(
                fn, base, images[owner], args, patch, limit, self.rel_tolerance, self.max_steps)
            passes = steps
        else:
            maps, total, change, steps, passes = self._uniform(fn, images, owner, base, args,
                                                               patch, limit)
            done = torch.ones(len(owner), dtype=torch.bool)
        k = len(owner) // b
        delta = (total - change).abs()
        rel = delta.view(b, k).sum(1) / change.abs().view(b, k).sum(1).clamp(min=1e-12)
        diagnostics = {"completeness_delta": Diagnostic(delta.view(b, k).mean(1), False),
                       "completeness_rel_delta": Diagnostic(rel, False),
                       "ig_steps": Diagnostic(steps.double().view(b, k).mean(1), False),
                       "ig_passes": Diagnostic(passes.double().view(b, k).sum(1), False)}
        # max_steps bounds every path IG integrates, the token path's included
        tokens = token_ig(model, images, text, self.target, self.rel_tolerance,
                          min(self.token_max_nodes, self.max_steps), limit) \
            if self.token_max_nodes else None
        return Explanation(to_grid(maps.view(b, k, -1).mean(1).float(), model.grid), diagnostics,
                           valid=(rel <= self.rel_tolerance) & done.view(b, k).all(1),
                           tokens=tokens)

    def _uniform(self, fn, images, owner, base, args, patch: int, limit: int):
        """captum's midpoint rule, steps doubled per sample while its gap exceeds the
        tolerance (the earlier estimator)."""
        from captum.attr import IntegratedGradients

        b, p = images.shape[0], len(owner)
        k = p // b

        def score(x: torch.Tensor) -> torch.Tensor:
            return chunked(lambda s, e: fn(x[s:e], *(t[s:e] for t in args)), len(x), limit)

        with torch.no_grad():
            change = (score(images[owner]) - score(base)).double().cpu()
        attr = torch.zeros_like(base)
        delta = torch.zeros(p, dtype=torch.float64)
        steps, passes = torch.zeros(p, dtype=torch.long), torch.zeros(p, dtype=torch.long)
        todo, n = torch.arange(b), self.n_steps
        while len(todo):
            rows = (todo[:, None] * k + torch.arange(k)).flatten()
            for paths in rows.split(limit):  # ⌊limit / paths⌋ steps of every path per forward
                a, d = IntegratedGradients(fn).attribute(
                    images[owner[paths]], baselines=base[paths],
                    additional_forward_args=tuple(t[paths] for t in args), n_steps=n,
                    method="riemann_middle", internal_batch_size=limit,
                    return_convergence_delta=True)
                attr[paths] = a.detach()
                delta[paths] = d.detach().double().cpu()
            steps[rows], passes[rows] = n, passes[rows] + n
            rel = delta[rows].abs().view(-1, k).sum(1) / change[rows].abs().view(-1, k).sum(1) \
                .clamp(min=1e-12)
            todo = todo[rel > self.rel_tolerance]
            if n * 2 > self.max_steps:
                break
            n *= 2
        pooled = F.avg_pool2d(attr.sum(1, keepdim=True), patch) * patch * patch
        return pooled.flatten(1).double(), change + delta, change, steps, passes


def ig_paths(images: torch.Tensor, kind: str, n_references: int = 4,
             preprocessing: Optional[Preprocessing] = None):
    """``(owner, baselines)``: the path starts for ``images`` (normalised), K per sample in
    sample order, and the index of the sample each path ends at."""
    b = images.shape[0]
    if kind != "expected":
        return torch.arange(b), ig_baseline(images, kind, preprocessing)
    k = min(n_references, b - 1)
    if k < 1:
        raise NotApplicable("expected gradients needs at least 2 images per batch "
                            "(its baselines are the batch's other images)")
    owner = torch.arange(b).repeat_interleave(k)
    refs = (owner + torch.arange(1, k + 1).repeat(b)) % b
    return owner, images[refs]


def ig_baseline(images: torch.Tensor, kind: str,
                preprocessing: Optional[Preprocessing] = None) -> torch.Tensor:
    """The path's start for ``images`` (normalised by ``preprocessing``): ``blur``, ``zero`` or
    ``black``."""
    if kind == "zero":
        return torch.zeros_like(images)
    if kind == "black":
        if preprocessing is None:
            raise ValueError("the black baseline needs the model's preprocessing")
        black = torch.zeros(1, images.shape[2], images.shape[3], 3, dtype=torch.uint8)
        return preprocessing.normalise(black).to(images).expand_as(images)
    if kind == "blur":
        import torchvision.transforms.functional as TF

        sigma = images.shape[-1] / 8
        k = 2 * int(3 * sigma) + 1
        return TF.gaussian_blur(images, [k, k], [sigma, sigma])
    raise ValueError(f"unknown IG baseline {kind!r}; use one of {', '.join(BASELINES)}")
