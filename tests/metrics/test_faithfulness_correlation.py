"""Faithfulness correlation equals Quantus' FaithfulnessCorrelation on shared subsets."""
import numpy as np
import pytest
import torch

import metrics
import metrics.faithfulness_correlation as fc
from tests.fixtures.toys import patch_mean_toy

W = np.arange(1, 17, dtype=np.float64)


class _QuantusToy(torch.nn.Module):
    """The same score as PatchMeanToy on a 4×4 one-channel image of patch values."""

    def forward(self, x):
        s = (x.double().flatten(1) * torch.as_tensor(W)).sum(1) / W.sum()
        return torch.stack([-s, s], 1).float()


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.5, 1.5, (2, 16))
    values[:, 5] = 0.0  # Quantus' "black" is the image's minimum: make it our zero substrate
    images = torch.as_tensor(values, dtype=torch.float32).reshape(2, 1, 4, 4)
    return values, images.repeat_interleave(2, 2).repeat_interleave(2, 3).expand(2, 3, 8, 8)


def test_equals_quantus_on_the_subsets_it_draws(monkeypatch):
    quantus = pytest.importorskip("quantus")
    values, images = _inputs()
    model = patch_mean_toy(W)
    maps = torch.as_tensor(np.random.default_rng(1).standard_normal((2, 16))).reshape(2, 4, 4)
    runs, size = 20, 4
    drawn = []  # the subsets Quantus draws (with NumPy's global generator), in its order
    choice = np.random.choice

    def recording_choice(*args, **kwargs):
        out = choice(*args, **kwargs)
        drawn.append(out)
        return out

    monkeypatch.setattr(np.random, "choice", recording_choice)
    np.random.seed(7)
    ref = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=size, normalise=False,
                                          abs=False, perturb_baseline="black",
                                          return_aggregate=False, disable_warnings=True)(
        model=_QuantusToy().eval(), x_batch=values.reshape(2, 1, 4, 4).astype(np.float32),
        y_batch=np.ones(2, int), a_batch=maps.numpy().reshape(2, 1, 4, 4).astype(np.float32),
        softmax=False, device="cpu")
    assert len(drawn) == 2 * runs
    subsets = np.zeros((2, runs, 16), bool)
    for k, idx in enumerate(drawn):  # run by run, sample by sample
        subsets[k % 2, k // 2, idx] = True
    monkeypatch.setattr(fc, "draw_subsets", lambda *a: torch.from_numpy(subsets))
    ours = metrics.get("faithfulness_correlation").with_options(runs=runs, subset=size / 16)(
        model, images, ["q", "q"], maps.float()).values
    assert np.allclose(ours, ref, atol=1e-5)
    assert not np.allclose(ours, ours[0])


def test_a_faithful_map_correlates_fully_and_subsets_are_seeded_per_sample():
    values, images = _inputs()
    model = patch_mean_toy(W)
    metric = metrics.get("faithfulness_correlation")
    # removing S drops Σ_{p∈S} w_p·x_p / Σw: the map w·x is exactly faithful
    exact = torch.as_tensor(values * W, dtype=torch.float32).reshape(2, 4, 4)
    assert np.allclose(metric(model, images, ["q", "q"], exact).values, 1.0, atol=1e-6)
    assert (metric(model, images, ["q", "q"], -exact).values < -0.99).all()
    noise = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0))
    assert (metric(model, images, ["q", "q"], noise).values < 0.9).all()
    first = fc.draw_subsets(["a", "b"], 16, 4, 5, 0)
    assert torch.equal(first[1], fc.draw_subsets(["b"], 16, 4, 5, 0)[0])
    assert not torch.equal(first[0], first[1]) and (first.sum(-1) == 4).all()
    assert np.isnan(metric(model, images, ["q", "q"], torch.ones(2, 4, 4)).values).all()
