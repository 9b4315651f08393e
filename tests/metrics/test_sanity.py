"""Model-parameter randomisation test (sanity_mprt)."""
import math

import numpy as np
import pytest
import torch

import methods
import metrics
from metrics.sanity import mprt, spearman

QUESTIONS = ["what colour is the square?", "is there a red circle?"]


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))


def test_registered():
    from metrics.base import SanityMetric

    metric = metrics.get("sanity_mprt")
    assert isinstance(metric, SanityMetric) and type(metric).__call__ is mprt


def test_independent_random_maps_are_uncorrelated(untrained_tiny):
    x = torch.zeros(4, 3, 96, 96)
    rand = methods.get("random")
    rho = spearman(rand(untrained_tiny, x, QUESTIONS * 2, seed=1),
                   rand(untrained_tiny, x, QUESTIONS * 2, seed=2))
    assert len(rho) == 4 and abs(sum(rho) / 4) < 0.2


def test_spearman_is_one_for_a_monotone_transform_and_zero_for_constant_maps():
    a = torch.rand(2, 12, 12, generator=torch.Generator().manual_seed(0))
    assert spearman(a, a ** 3) == pytest.approx([1.0, 1.0])
    # a randomised model whose maps collapse to a constant changed most: it counts, as ρ = 0
    assert spearman(a, torch.ones_like(a)) == [0.0, 0.0]


def test_sanity_metrics_are_registered_with_their_direction():
    for name, higher in (("sanity_mprt", False), ("random_logit", False),
                         ("question_swap", False), ("smprt", False), ("emprt", True),
                         ("sensitivity_max", False)):
        fn = metrics.get(name)
        assert fn.kind == "sanity" and fn.higher_is_better is higher


def test_question_swap_separates_a_question_reading_map_from_a_fixed_one(untrained_tiny, images):
    from metrics.sanity import question_swap

    qs = ["what colour is the square?", "how many circles are there?"]
    (fixed,) = question_swap(untrained_tiny, methods.get("center"), images, qs)
    assert fixed["spearman"] == [1.0, 1.0]  # ignores the question
    (reading,) = question_swap(untrained_tiny, methods.get("cross_attn_gradcam"), images, qs)
    assert all(r < 0.999 for r in reading["spearman"])


def test_random_logit_explains_another_output_of_the_same_input(trained_tiny, images,
                                                                 monkeypatch):
    """Sixt et al.'s test: the map of the no-match logit against the map of the match logit,
    same image and question (it used to swap in another question); a method that explains no
    output has no such test."""
    import methods.base
    from metrics.sanity import random_logit

    targets = []
    explain = methods.base.Attribution.__call__
    monkeypatch.setattr(methods.base.Attribution, "__call__", lambda self, model, x, qs, **k:
                        targets.append((getattr(self, "target", None), tuple(qs)))
                        or explain(self, model, x, qs, **k))
    (stage,) = random_logit(trained_tiny, methods.get("gradient_x_input"), images, QUESTIONS)
    assert targets == [("itm", tuple(QUESTIONS)), ("itm_nonmatch", tuple(QUESTIONS))]
    assert all(-1 <= r < 0.999 for r in stage["spearman"])
    assert random_logit(trained_tiny, methods.get("rollout"), images, QUESTIONS) == []


def test_emprt_and_smprt_on_a_map_that_ignores_the_model(untrained_tiny, images):
    from metrics.sanity import emprt, histogram_entropy, smprt

    # the centre prior does not depend on the parameters: no change in complexity, ρ = 1
    (change,) = emprt(untrained_tiny, methods.get("center"), images, QUESTIONS)
    assert change["relative_complexity_change"] == pytest.approx([0.0, 0.0])
    (smooth,) = smprt(untrained_tiny, methods.get("center"), images, QUESTIONS, n_noise=2)
    assert smooth["spearman"] == pytest.approx([1.0, 1.0])
    flat = torch.zeros(1, 4, 4)
    spread = torch.arange(16.0).reshape(1, 4, 4)
    assert histogram_entropy(flat)[0] == 0.0
    assert histogram_entropy(spread, bins=16)[0] == pytest.approx(np.log(16))


def test_mprt_on_untrained_tiny(untrained_tiny, images):
    before = {k: v.clone() for k, v in untrained_tiny.module.state_dict().items()}
    out = mprt(untrained_tiny, methods.get("fused_gradcam"), images, QUESTIONS, seed=0)
    names = [name for name, _ in untrained_tiny.randomisation_stages()]
    assert [r["stage"] for r in out] == names
    assert [r["index"] for r in out] == list(range(len(names)))
    assert names[0] == "heads" and names[-1] == "patch_embed"
    assert all(len(r["spearman"]) == 2 for r in out)
    assert all(math.isfinite(v) for v in out[0]["spearman"])
    # the original model is untouched
    after = untrained_tiny.module.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_mprt_is_deterministic(untrained_tiny, images):
    first, second = (mprt(untrained_tiny, methods.get("fused_gradcam"), images, QUESTIONS, seed=3, stages=3)
                     for _ in range(2))
    assert len(first) == 3
    assert [r["stage"] for r in first] == [r["stage"] for r in second]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a["spearman"], b["spearman"])  # NaN == NaN here


def test_a_sanity_unit_explains_each_distinct_input_once_with_unchanged_statistics(monkeypatch):
    """The trained model's maps (cascade, rerun, random logit, eMPRT) and the fully randomised
    model's (the cascade's last stage, eMPRT) are computed once per unit; every statistic is
    what the tests give when each computes its own maps."""
    import metrics.sanity
    from benchmark import models
    from benchmark.engine.config import RunConfig
    from benchmark.engine.run_data import load_run_data
    from benchmark.engine.sanity_run import sanity_unit

    model = models.load("blip-itm-tiny")
    data = load_run_data(RunConfig(models=["blip-itm-tiny"], methods=["gradient_x_input"],
                                   limit=3, metrics=["sanity_mprt", "random_logit", "emprt"],
                                   sanity_samples=3))
    calls = []
    explain = methods.base.Attribution.__call__
    monkeypatch.setattr(methods.base.Attribution, "__call__",
                        lambda self, *a, **k: calls.append(1) or explain(self, *a, **k))
    shared = sanity_unit(model, "gradient_x_input", data)
    n_shared = len(calls)
    monkeypatch.setattr(metrics.sanity, "SharedMaps", lambda method: method)
    calls.clear()
    assert sanity_unit(model, "gradient_x_input", data) == shared
    stages = len(model.randomisation_stages())
    # cascade 1 + stages, rerun 2, random logit 2, eMPRT 2 (sMPRT's noisy inputs are its own)
    assert len(calls) == 1 + stages + 2 + 2 + 2
    # shared: the trained model's maps three more times (rerun, random logit, eMPRT), the fully
    # randomised model's once (eMPRT)
    assert n_shared == len(calls) - 4


def test_smprt_noise_is_scaled_per_sample_not_by_the_batch():
    """A sample's noisy copies depend on its own value range only: the same image scores the
    same whichever images share its batch (σ used to be the whole batch's range)."""
    from benchmark import models
    from metrics.sanity import smprt

    model = models.load("blip-itm-tiny")
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1, 3, 96, 96, generator=g), 5 * torch.randn(1, 3, 96, 96, generator=g)
    alone = smprt(model, methods.get("gradient_x_input"), a, QUESTIONS[:1], n_noise=3)[0]["spearman"]
    beside = smprt(model, methods.get("gradient_x_input"), torch.cat([a, b]), QUESTIONS, n_noise=3)
    assert beside[0]["spearman"][0] == pytest.approx(alone[0], abs=1e-6)


def test_mprt_reports_the_absolute_map_variant(untrained_tiny, images):
    """Adebayo et al.'s second variant: ρ of |map|, unchanged by a sign flip."""
    from metrics.sanity import correlations

    a = torch.randn(2, 12, 12, generator=torch.Generator().manual_seed(0))
    out = correlations(a, -a)
    assert out["spearman"] == pytest.approx([-1.0, -1.0])
    assert out["spearman_abs_maps"] == pytest.approx([1.0, 1.0])
    stages = mprt(untrained_tiny, methods.get("gradient_x_input"), images, QUESTIONS, stages=1)
    assert set(stages[0]) == {"stage", "index", "spearman", "spearman_abs_maps"}


class _PatchMeans:
    """An explainer whose map is the image's patch means: its change under noise is known."""

    options, sanity_options = (), {}

    def __call__(self, model, images, questions, **kwargs):
        return torch.nn.functional.avg_pool2d(images.mean(1, keepdim=True), 2)[:, 0]

    def with_options(self, **options):
        return self


def test_sensitivity_max_is_the_largest_relative_change_over_its_seeded_noise():
    from tests.fixtures.toys import patch_mean_toy

    model, b, k = patch_mean_toy(np.ones(16)), 2, 4
    images = torch.rand(b, 3, 8, 8, generator=torch.Generator().manual_seed(0)) + 1
    metric = metrics.get("sensitivity_max").with_options(samples=k, radius=0.1)
    (stage,) = metric(model, _PatchMeans(), images, ["q", "r"], seed=5)
    noise = (torch.rand((b * k, 3, 8, 8), generator=torch.Generator().manual_seed(5 + 53)) * 2
             - 1) * 0.1
    explainer = _PatchMeans()
    base = explainer(model, images, ["q", "r"])
    moved = explainer(model, images.repeat_interleave(k, 0) + noise, [])
    change = (moved - base.repeat_interleave(k, 0)).flatten(1).norm(dim=1).reshape(b, k)
    expected = change.max(1).values / base.flatten(1).norm(dim=1)
    assert np.allclose(stage["sensitivity"], expected.numpy(), rtol=1e-5)
    assert all(v > 0 for v in stage["sensitivity"])
    (still,) = metric(model, methods.get("center"), images, ["q", "r"], seed=5)
    assert still["sensitivity"] == [0.0, 0.0]
