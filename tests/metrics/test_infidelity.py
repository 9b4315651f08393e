"""Infidelity (captum's) on a model whose score is linear in the patches."""
import numpy as np
import pytest
import torch

import metrics
from metrics.faithfulness_correlation import draw_subsets, subset_probabilities
from tests.fixtures.toys import patch_mean_toy

W = np.arange(1, 17, dtype=np.float64)


def _images():
    values = np.random.default_rng(0).uniform(0.5, 1.5, (2, 16))
    images = torch.as_tensor(values, dtype=torch.float32).reshape(2, 1, 4, 4)
    return values, images.repeat_interleave(2, 2).repeat_interleave(2, 3).expand(2, 3, 8, 8)


def test_equals_its_definition_with_the_optimal_scale():
    values, images = _images()
    model = patch_mean_toy(W)
    maps = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(2))
    out = metrics.get("infidelity").with_options(runs=12)(model, images, ["q", "q"], maps).values
    removed = draw_subsets(["row-0", "row-1"], 16, 4, 12, 0).double().numpy()
    drops = (removed * values[:, None] * W).sum(-1) / W.sum()  # zero substrate: Δf exactly
    sums = (removed * maps.reshape(2, 1, 16).double().numpy()).sum(-1)
    beta = (sums * drops).sum(1) / (sums ** 2).sum(1)
    expected = ((beta[:, None] * sums - drops) ** 2).mean(1)
    assert np.allclose(out, expected, rtol=1e-4) and (out > 1e-6).all()


def test_reads_the_drops_faithfulness_correlation_reads():
    """Both metrics read one set of drops: given them, neither runs the model."""
    values, images = _images()
    model = patch_mean_toy(W)
    maps = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(3))
    infid, fc = metrics.get("infidelity"), metrics.get("faithfulness_correlation")
    shared = subset_probabilities(model, images, ["q", "q"], ["row-0", "row-1"], 32, 0.25, 0)

    class NoModel:
        grid = (4, 4)

    for metric in (infid, fc):
        alone = metric(model, images, ["q", "q"], maps).values
        assert np.array_equal(metric(NoModel(), images, ["q", "q"], maps, subsets=shared).values,
                              alone)


def test_zero_for_the_exact_map_at_any_scale_and_blind_to_sign():
    values, images = _images()
    model = patch_mean_toy(W)
    metric = metrics.get("infidelity")
    exact = torch.as_tensor(values * W, dtype=torch.float32).reshape(2, 4, 4)
    noise = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0))
    worse = metric(model, images, ["q", "q"], noise).values
    for scale in (1e-6, 1.0, -1.0):
        assert metric(model, images, ["q", "q"], scale * exact).values == \
            pytest.approx([0, 0], abs=1e-7)  # float32 cancellation
    assert (worse > 1e-5).all()
