"""Rollout against a hand computation; IG against captum called directly."""
from dataclasses import dataclass, field

import pytest
import torch

import methods
from methods.rollout import fused_rollout, rollout_matrix
from tests.fixtures.toys import Toy, toy

QUESTIONS = ["what colour is the square?", "is there a red circle?"]


def test_rollout_two_layers_by_hand():
    # layer 1: two heads whose mean is [[.5,.5],[.2,.8]]; layer 2: one head [[1,0],[.4,.6]]
    a1 = torch.tensor([[[[0.6, 0.4], [0.1, 0.9]], [[0.4, 0.6], [0.3, 0.7]]]])
    a2 = torch.tensor([[[[1.0, 0.0], [0.4, 0.6]]]])
    # (A1+I)/rows = [[.75,.25],[.1,.9]]; (A2+I)/rows = [[1,0],[.2,.8]]; product:
    expected = torch.tensor([[[0.75, 0.25], [0.23, 0.77]]])
    assert torch.allclose(rollout_matrix([a1, a2]), expected, atol=1e-6)


def test_fused_rollout_rows_are_distributions():
    g = torch.Generator().manual_seed(0)
    att = lambda s: torch.rand(2, 3, s, s, generator=g).softmax(-1)  # noqa: E731
    vit = rollout_matrix([att(5), att(5)])
    out = fused_rollout(vit, [att(4)] * 2, [att(4)] * 2, [att(4)])
    assert out.shape == (2, 5, 4)
    assert torch.allclose(out.sum(-1), torch.ones(2, 5), atol=1e-5)


def test_rollout_runs_on_the_baseline(untrained_tiny):
    maps = methods.get("rollout")(untrained_tiny, torch.randn(2, 3, 96, 96), QUESTIONS)
    assert maps.shape == (2, 12, 12) and (maps >= 0).all() and maps.sum() > 0


@dataclass
class SmoothToy(Toy):
    """match logit = Σ_i w_i · tanh(x_i) over the pixels of a 2×2 grid of 4 px patches: smooth,
    with a closed-form gradient, so IG can be computed without captum."""

    w: torch.Tensor = field(default_factory=lambda: torch.linspace(
        -1, 2, 3 * 8 * 8, dtype=torch.float64).reshape(1, 3, 8, 8))

    def text_hidden(self, image_embeds, text, image_atts=None):
        return (self.w * torch.tanh(image_embeds.double())).sum((1, 2, 3))[:, None, None]

    def match_head(self, enc_hidden):
        return torch.cat([torch.zeros_like(enc_hidden), enc_hidden], 1)


def smooth_toy():
    return toy(SmoothToy, (2, 2), 8)


def _riemann_ig(toy, x, base, n=4000):
    """Midpoint Riemann sum of IG with the analytic gradient w · (1 − tanh²)."""
    alphas = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    grads = sum(toy.w * (1 - torch.tanh(base + a * (x - base)) ** 2) for a in alphas) / n
    return ((x - base) * grads).sum(1).reshape(len(x), 2, 4, 2, 4).sum((2, 4))


def test_integrated_gradients_equals_an_independent_riemann_sum_on_a_smooth_model():
    toy = smooth_toy()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0)).double() * 2
    method = methods.get("integrated_gradients")
    out = method.explain_with(toy, x.float(), ["q"] * 3, baseline="zero", rel_tolerance=1e-4,
                              max_steps=1024)
    ours = out.maps
    ref = _riemann_ig(toy, x, torch.zeros_like(x))
    assert torch.allclose(ours.double(), ref, rtol=1e-3, atol=1e-3 * float(ref.abs().max()))
    rel = out.diagnostics["completeness_rel_delta"]
    assert bool(out.valid.all()) and float(rel.values.max()) <= 1e-4
    assert not rel.higher_is_better
    # the relative gap is |Σ attributions − Δf| / |Δf|, recomputed here from the maps
    q = ["q"] * len(x)
    df = toy.itm_logits(x, q)[:, 1] - toy.itm_logits(torch.zeros_like(x), q)[:, 1]
    gap = (ours.double().sum((1, 2)) - df).abs() / df.abs()
    assert torch.allclose(gap, rel.values, atol=1e-4)


def test_integrated_gradients_doubles_its_steps_until_the_gap_is_small():
    """The uniform reference rule: steps doubled from n_steps, each time integrated anew."""
    toy = smooth_toy()
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 3
    method = methods.get("integrated_gradients").with_options(rule="uniform")
    loose = method.explain_with(toy, x, ["q"] * 2, baseline="zero", n_steps=4, rel_tolerance=1e-5,
                                max_steps=64).diagnostics["ig_steps"].values
    assert set(loose.tolist()) <= {4.0, 8.0, 16.0, 32.0, 64.0}
    assert float(loose.max()) > 4  # it had to refine
    capped = method.explain_with(toy, x, ["q"] * 2, baseline="zero", n_steps=4,
                                 rel_tolerance=1e-12, max_steps=8)
    assert capped.diagnostics["ig_steps"].values.tolist() == [8.0, 8.0]
    assert not bool(capped.valid.any())


@dataclass
class KinkToy(Toy):
    """match logit = Σ_i w_i |x_i − c_i|, two pixels weighing far more than the rest: the path
    derivative jumps where those pixels pass c_i, by much more than the score changes (as a ReLU
    network's can). A sum of one-pixel terms, so IG is exact in closed form: pixel i's
    attribution is w_i (|x_i − c_i| − |x'_i − c_i|)."""

    w: torch.Tensor = field(default_factory=lambda: torch.full((1, 3, 8, 8), 0.01,
                                                               dtype=torch.float64))
    c: torch.Tensor = field(default_factory=lambda: torch.full((1, 3, 8, 8), 0.3,
                                                               dtype=torch.float64))

    def __post_init__(self):
        self.w[0, 0, 0, 0], self.w[0, 1, 5, 6] = 10.0, 6.0
        self.c[0, 0, 0, 0], self.c[0, 1, 5, 6] = 0.45, 0.37

    def score(self, x):
        return self.w * (x.double() - self.c).abs()

    def text_hidden(self, image_embeds, text, image_atts=None):
        return self.score(image_embeds).sum((1, 2, 3))[:, None, None]

    def match_head(self, enc_hidden):
        return torch.cat([torch.zeros_like(enc_hidden), enc_hidden], 1)


def test_adaptive_ig_spends_few_nodes_on_jumps_of_the_path_derivative():
    """A panel holding a jump never meets its width's share of the tolerance; the path is
    accepted on its summed error estimate instead, in far fewer nodes than the per-panel shares
    alone needed (213–413 per path) or than the uniform rule spends (224–480), and equals the
    closed form within the tolerance."""
    kink = toy(KinkToy, (2, 2), 8)
    x = 0.6 + 0.4 * torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(8))
    exact = (kink.score(x) - kink.score(torch.zeros_like(x))).sum(1) \
        .reshape(3, 2, 4, 2, 4).sum((2, 4))
    out = methods.get("integrated_gradients").explain_with(kink, x, ["q"] * 3, baseline="zero")
    assert bool(out.valid.all())
    assert float(out.diagnostics["ig_passes"].values.max()) <= 100
    rel = (out.maps.double() - exact).abs().sum((1, 2)) / exact.abs().sum((1, 2))
    assert float(rel.max()) <= 0.05, rel


def test_expected_gradients_averages_ig_from_the_batchs_other_images():
    toy = smooth_toy()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(3)).double() * 2
    method = methods.get("integrated_gradients")
    out = method.explain_with(toy, x.float(), ["q"] * 3, baseline="expected", n_references=2,
                              rel_tolerance=1e-4, max_steps=1024)
    ours = out.maps
    # sample i starts from images i+1 and i+2 (cyclically)
    refs = [[1, 2], [2, 0], [0, 1]]
    ref = torch.stack([sum(_riemann_ig(toy, x[i:i + 1], x[j:j + 1])[0] for j in js) / 2
                       for i, js in enumerate(refs)])
    assert torch.allclose(ours.double(), ref, rtol=1e-3, atol=1e-3 * float(ref.abs().max()))
    # completeness against the mean reference score
    f = toy.itm_logits(x, ["q"] * len(x))[:, 1]
    expected_sum = torch.stack([f[i] - f[js].mean() for i, js in enumerate(refs)])
    assert torch.allclose(ours.double().sum((1, 2)), expected_sum, atol=1e-2)
    assert bool(out.valid.all())
    with pytest.raises(methods.NotApplicable, match="at least 2 images"):
        method(toy, x[:1].float(), ["q"], baseline="expected")


def test_integrated_gradients_targets_and_baselines(untrained_tiny):
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    method = methods.get("integrated_gradients")
    for target in ("itm", "itm_prob"):
        for baseline in ("blur", "zero", "black", "expected"):
            maps = method(untrained_tiny, images, QUESTIONS, n_steps=4, max_steps=4,
                          target=target, baseline=baseline)
            assert maps.shape == (2, 12, 12) and torch.isfinite(maps).all()
    with pytest.raises(methods.UnknownOption, match="must be one of blur, zero"):
        method(untrained_tiny, images, QUESTIONS, baseline="grey")
    with pytest.raises(methods.UnknownOption, match="no option 'nsteps'; its options: rule, n_steps"):
        method(untrained_tiny, images, QUESTIONS, nsteps=8)
