"""Integrated Gradients over the question's token embeddings: equal to a midpoint sum written
out by hand and to captum's LayerIntegratedGradients, complete, and NaN where it does not
converge."""
import torch
from captum.attr import LayerIntegratedGradients

import methods
from benchmark.models.tensors import TextBatch
from methods._token_ig import token_ig
from methods.base import target_score

QUESTIONS = ["is there a red cube left of the blue sphere?", "is there a green cylinder?"]


def _hand_ig(model, images, text, start, n=400):
    """Midpoint rule on the embedding layer's output, by a forward hook that returns the point
    of the path (no captum)."""
    site = model.text_embedding_site()
    image_embeds = model.visual_tokens(images).detach()
    with torch.no_grad():
        e1 = site(input_ids=text.input_ids)
        e0 = site(input_ids=start)
    total = torch.zeros_like(e1)
    for a in (torch.arange(n, dtype=torch.float32) + 0.5) / n:
        point = (e0 + a * (e1 - e0)).requires_grad_(True)
        handle = site.register_forward_hook(lambda _m, _a, _o: point)
        try:
            score = target_score(model, image_embeds, text, "itm")
        finally:
            handle.remove()
        total += torch.autograd.grad(score.sum(), [point])[0]
    return ((e1 - e0) * total / n).sum(-1)


def test_token_ig_equals_a_hand_midpoint_sum_and_is_complete(untrained_tiny):
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    text = untrained_tiny.tokenize(QUESTIONS)
    ours = token_ig(untrained_tiny, images, text, "itm", 0.01, 4097, 64)
    rows = untrained_tiny.cross_attention_rows(text) > 0
    pad = untrained_tiny.tokenizer.pad_token_id
    start = torch.where(rows, torch.full_like(text.input_ids, pad), text.input_ids)
    hand = _hand_ig(untrained_tiny, images, text, start)
    assert torch.equal(torch.isfinite(ours), rows)
    assert torch.allclose(ours[rows], hand[rows], atol=2e-3, rtol=2e-2)
    with torch.no_grad():
        embeds = untrained_tiny.visual_tokens(images)
        change = (target_score(untrained_tiny, embeds, text, "itm")
                  - target_score(untrained_tiny, embeds, TextBatch(start, text.attention_mask),
                                 "itm"))
    assert torch.allclose(ours.nansum(1), change, rtol=0.01, atol=1e-4)
    site = untrained_tiny.text_embedding_site()
    embeds = embeds.detach()
    theirs = LayerIntegratedGradients(
        lambda ids, mask, image: target_score(untrained_tiny, image, TextBatch(ids, mask), "itm"),
        site).attribute(text.input_ids, baselines=start, n_steps=256,
                        additional_forward_args=(text.attention_mask, embeds)).sum(-1)
    assert torch.allclose(ours[rows], theirs[rows].float(), atol=2e-3, rtol=2e-2)


def test_unconverged_token_rows_are_nan_and_ig_returns_its_tokens(untrained_tiny):
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    text = untrained_tiny.tokenize(QUESTIONS)
    assert torch.isnan(token_ig(untrained_tiny, images, text, "itm", 1e-9, 9, 64)).all()
    out = methods.get("integrated_gradients").explain(untrained_tiny, images, QUESTIONS)
    assert out.tokens is not None and torch.isfinite(out.tokens).sum() > 0
    off = methods.get("integrated_gradients").explain_with(untrained_tiny, images, QUESTIONS,
                                                           token_max_nodes=0)
    assert off.tokens is None and torch.equal(off.maps, out.maps)
