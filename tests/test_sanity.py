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
    for name, higher in (("sanity_mprt", False), ("random_logit", False), ("smprt", False),
                         ("emprt", True)):
        fn = metrics.get(name)
        assert fn.kind == "sanity" and fn.higher_is_better is higher


def test_random_logit_separates_a_question_reading_map_from_a_fixed_one(untrained_tiny, images):
    from metrics.sanity import random_logit

    qs = ["what colour is the square?", "how many circles are there?"]
    assert random_logit(untrained_tiny, "center", images, qs) == [1.0, 1.0]  # ignores the question
    rho = random_logit(untrained_tiny, "cross_attn_gradcam", images, qs)
    assert all(r < 0.999 for r in rho)


def test_emprt_and_smprt_on_a_map_that_ignores_the_model(untrained_tiny, images):
    from metrics.sanity import emprt, histogram_entropy, smprt

    # the centre prior does not depend on the parameters: no rise in complexity, ρ = 1
    assert emprt(untrained_tiny, "center", images, QUESTIONS) == pytest.approx([1.0, 1.0])
    assert smprt(untrained_tiny, "center", images, QUESTIONS, n_noise=2) == pytest.approx([1.0, 1.0])
    flat = torch.zeros(1, 4, 4)
    spread = torch.arange(16.0).reshape(1, 4, 4)
    assert histogram_entropy(flat)[0] == 0.0
    assert histogram_entropy(spread, bins=16)[0] == pytest.approx(np.log(16))


def test_mprt_on_untrained_tiny(untrained_tiny, images):
    before = {k: v.clone() for k, v in untrained_tiny.module.state_dict().items()}
    out = mprt(untrained_tiny, "fused_gradcam", images, QUESTIONS, seed=0)
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
    first, second = (mprt(untrained_tiny, "fused_gradcam", images, QUESTIONS, seed=3, stages=3)
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
    from benchmark.config import RunConfig, load_dataset
    from benchmark.sanity_run import sanity_unit

    model = models.load("blip-itm-tiny")
    cfg = RunConfig(models=["blip-itm-tiny"], methods=["gradient_x_input"], limit=3,
                    metrics=["sanity_mprt", "random_logit", "smprt", "emprt"], sanity_samples=3)
    dataset = load_dataset(cfg)
    records = [dataset[i] for i in range(3)]
    calls = []
    explain = methods.base.Attribution.__call__
    monkeypatch.setattr(methods.base.Attribution, "__call__",
                        lambda self, *a, **k: calls.append(1) or explain(self, *a, **k))
    shared = sanity_unit(model, "gradient_x_input", records, cfg)
    n_shared = len(calls)
    monkeypatch.setattr(metrics.sanity, "SharedMaps", lambda method: method)
    calls.clear()
    assert sanity_unit(model, "gradient_x_input", records, cfg) == shared
    stages = len(model.randomisation_stages())
    # cascade 1 + stages, rerun 2, random logit 2, sMPRT 2 × 4 noisy copies, eMPRT 2
    assert len(calls) == 1 + stages + 2 + 2 + 8 + 2
    # shared: the trained model's maps three more times (rerun, random logit, eMPRT), the fully
    # randomised model's once (eMPRT)
    assert n_shared == len(calls) - 4
