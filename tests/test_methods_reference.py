"""Rollout against a hand computation; IG against captum called directly."""
import pytest
import torch

import methods
from benchmark.models.adapter import TextBatch
from methods.rollout import fused_rollout, rollout_matrix

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


def test_integrated_gradients_equals_captum_directly(untrained_tiny):
    from captum.attr import IntegratedGradients

    model = untrained_tiny
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    method = methods.get("integrated_gradients")
    ours = method(model, images, QUESTIONS, n_steps=8)
    text = model.tokenize(QUESTIONS)

    def f(x, ids, mask):
        return model.itm_logits(x, TextBatch(ids, mask)).softmax(-1)[:, 1]

    attr = IntegratedGradients(f).attribute(images, baselines=torch.zeros_like(images),
                                            additional_forward_args=(text.input_ids, text.attention_mask),
                                            n_steps=8)
    ref = attr.sum(1).reshape(2, 12, 8, 12, 8).sum((2, 4))
    assert ref.abs().max() > 0
    assert torch.allclose(ours, ref, atol=1e-5 * float(ref.abs().max()))
    # completeness: sum of attributions = f(x) - f(baseline) up to the recorded delta
    delta = method.last_extras["completeness_delta"]
    gap = (f(images, text.input_ids, text.attention_mask)
           - f(torch.zeros_like(images), text.input_ids, text.attention_mask)).detach()
    assert torch.allclose(ours.sum((1, 2)), gap, atol=float(delta.max()) + 1e-6)
