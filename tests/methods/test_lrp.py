"""LRP: its ε rule equals zennit's on shared layers, relevance is conserved through BLIP's
attention and normalisation, and the forward pass is left as it was."""
import pytest
import torch
from torch import nn
from zennit.attribution import Gradient
from zennit.composites import LayerMapComposite
from zennit.rules import Epsilon, Pass

import methods
from methods.lrp import lrp_rules, relevance

QUESTIONS = ["is there a red cube left of the blue sphere?", "is there a green cylinder?"]


def _images(n=2, seed=0):
    return torch.randn(n, 3, 96, 96, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("epsilon", [1e-6, 0.25])
def test_epsilon_rule_equals_zennits_on_convolutional_and_linear_layers(epsilon):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.GELU(), nn.Flatten(),
                        nn.Linear(4 * 6 * 6, 16), nn.ReLU(), nn.Linear(16, 3)).eval()
    x = torch.randn(5, 3, 6, 6)
    pick = nn.functional.one_hot(torch.tensor([2, 0, 1, 2, 1]), 3).float()
    composite = LayerMapComposite([(nn.Conv2d, Epsilon(epsilon)), (nn.Linear, Epsilon(epsilon)),
                                   (nn.GELU, Pass()), (nn.ReLU, Pass())])
    with Gradient(model=net, composite=composite) as attributor:
        _, theirs = attributor(x, lambda out: out * pick)  # output relevance: the logit itself
    xs = x.clone().requires_grad_(True)
    with lrp_rules(net, [], epsilon):
        (g,) = torch.autograd.grad((net(xs) * pick).sum(), [xs])
    assert torch.allclose(xs.detach() * g, theirs, rtol=1e-4, atol=1e-6)


def test_relevance_is_conserved_through_attention_and_layer_norm(untrained_tiny):
    """With every bias and additive embedding zeroed, the pixels and the token embeddings hold
    the whole match logit (a missing rule — a softmax or a normaliser left in the gradient —
    breaks the sum)."""
    model = untrained_tiny.clone()
    with torch.no_grad():
        for name, p in model.module.named_parameters():
            if name.endswith("bias") or "pos_embed" in name or "cls_token" in name:
                p.zero_()
    images = _images()
    pixels, tokens = relevance(model, images, model.tokenize(QUESTIONS), "itm", 1e-12)
    logit = model.itm_logits(images, QUESTIONS)[:, 1]
    assert torch.allclose(pixels.sum((1, 2, 3)) + tokens.sum(1), logit, rtol=1e-4, atol=1e-5)
    # plain gradient × input does not conserve it: the rules are what make the sum hold
    x = images.clone().requires_grad_(True)
    score = model.itm_logits(x, QUESTIONS)[:, 1]
    (g,) = torch.autograd.grad(score.sum(), [x])
    assert not torch.allclose((x.detach() * g).sum((1, 2, 3)) + tokens.sum(1), logit, atol=1e-3)


def test_forward_values_unchanged_and_hooks_removed(untrained_tiny):
    images = _images(3, 1)
    before = untrained_tiny.itm_logits(images, QUESTIONS + ["a?"])
    sites = [s for k in ("vision", "text_self", "text_cross")
             for s in untrained_tiny.attention_sites(k)]
    with lrp_rules(untrained_tiny.module, sites, 1e-6):
        inside = untrained_tiny.itm_logits(images, QUESTIONS + ["a?"])
    assert torch.equal(before, inside)
    assert not any(m._forward_hooks for m in untrained_tiny.module.modules())


def test_map_is_the_pixel_relevance_per_patch_and_tokens_cover_the_question(untrained_tiny):
    images = _images()
    out = methods.get("lrp").explain(untrained_tiny, images, QUESTIONS)
    text = untrained_tiny.tokenize(QUESTIONS)
    pixels, tokens = relevance(untrained_tiny, images, text, "itm", 1e-6)
    assert out.maps.shape == (2, 12, 12)
    assert torch.allclose(out.maps.sum((1, 2)), pixels.sum((1, 2, 3)), rtol=1e-4, atol=1e-6)
    rows = untrained_tiny.cross_attention_rows(text) > 0
    assert torch.equal(torch.isfinite(out.tokens), rows)
    assert torch.allclose(out.tokens[rows], tokens[rows])
    assert methods.get("lrp").role == "exploratory"
