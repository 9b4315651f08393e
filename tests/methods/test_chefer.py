"""Chefer et al.'s relevance rules against a hand computation, and the method on a tiny model."""
import torch

import methods
from methods.chefer_relevance import head_mean, propagate

QUESTIONS = ["what colour is the square?", "is there a red circle near the big blue square?"]


def _pair(attn):
    """One head, gradient 1 everywhere: the rule's Ā is the attention itself."""
    a = torch.tensor(attn)[None, None]
    return a, torch.ones_like(a)


# image (CLS + 2 patches): A with a negative gradient on entry (0, 2), so Ā[0, 2] = 0
A_IMG = torch.tensor([[0.5, 0.25, 0.25], [0.0, 0.5, 0.5], [0.25, 0.25, 0.5]])[None, None]
G_IMG = torch.tensor([[2.0, 2.0, -1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])[None, None]
TEXT_SELF = [[0.5, 0.5], [0.25, 0.75]]
TEXT_CROSS = [[0.2, 0.3, 0.5], [0.4, 0.4, 0.2]]
# By hand: Ā_img = [[1,.5,0],[0,.5,.5],[.25,.25,.5]], R^ii = I + Ā_img, R̄^ii = [[5/3,1/3,0],
# [0,1.5,.5],[.25,.25,1.5]]; R^tt = I + Ā_t = [[1.5,.5],[.25,1.75]] = R̄^tt (rows of Ā_t sum
# to 1); R^ti = 0 after the text self-attention; the cross-attention gives
# (R̄^tt)ᵀ Ā_c = [[.4,.55,.8],[.8,.85,.6]] and R^ti = that · R̄^ii:
R_TI = torch.tensor([
    [0.4 * 5 / 3 + 0.8 * 0.25, 0.4 / 3 + 0.55 * 1.5 + 0.8 * 0.25, 0.55 * 0.5 + 0.8 * 1.5],
    [0.8 * 5 / 3 + 0.6 * 0.25, 0.8 / 3 + 0.85 * 1.5 + 0.6 * 0.25, 0.85 * 0.5 + 0.6 * 1.5]])


def test_rules_by_hand():
    rel = propagate([(A_IMG, G_IMG)], [(_pair(TEXT_SELF), _pair(TEXT_CROSS))])
    r_ii = torch.tensor([[2.0, 0.5, 0.0], [0.0, 1.5, 0.5], [0.25, 0.25, 1.5]])  # I + Ā_img
    assert torch.allclose(rel.ii[0], r_ii)
    assert torch.allclose(rel.tt[0], torch.tensor([[1.5, 0.5], [0.25, 1.75]]))
    assert torch.allclose(rel.ti[0], R_TI, atol=1e-6)
    assert torch.allclose(rel.ti[0, 0], torch.tensor([0.866667, 1.158333, 1.475]), atol=1e-5)


def test_second_text_self_attention_propagates_text_to_image_relevance():
    layer = (_pair(TEXT_SELF), _pair(TEXT_CROSS))
    rel = propagate([(A_IMG, G_IMG)], [layer, (_pair(TEXT_SELF), _pair([[0.0] * 3] * 2))])
    # R^ti += Ā_t R^ti with Ā_t = [[.5,.5],[.25,.75]]; the zero cross-attention adds nothing
    expected = R_TI + torch.tensor(TEXT_SELF) @ R_TI
    assert torch.allclose(rel.ti[0], expected, atol=1e-6)


def test_padding_tokens_do_not_contribute():
    # a third, padded text token with non-zero attention everywhere
    a_self = torch.tensor([[0.4, 0.4, 0.2], [0.2, 0.6, 0.2], [0.3, 0.3, 0.4]])[None, None]
    a_cross = torch.tensor(TEXT_CROSS + [[0.9, 0.05, 0.05]])[None, None]
    pad_layer = ((a_self, torch.ones_like(a_self)), (a_cross, torch.ones_like(a_cross)))
    rel = propagate([(A_IMG, G_IMG)], [pad_layer], text_mask=torch.tensor([[1, 1, 0]]))
    # Ā_t restricted to the real tokens is [[.4,.4],[.2,.6]]: R^tt = [[1.4,.4],[.2,1.6]], whose
    # normalised form is [[1.5,.5],[.25,1.75]] as in the hand example, so R^ti matches it
    assert torch.allclose(rel.ti[0, :2], R_TI, atol=1e-6)
    assert torch.equal(rel.ti[0, 2], torch.zeros(3))


def test_heads_are_clamped_before_averaging():
    attn = torch.ones(1, 2, 1, 1)
    grad = torch.tensor([1.0, -1.0]).view(1, 2, 1, 1)
    assert head_mean(attn, grad).item() == 0.5  # mean of (1, 0), not clamp(mean(1, -1)) = 0


def test_method_on_untrained_tiny(untrained_tiny):
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    maps = methods.get("chefer_relevance")(untrained_tiny, images, QUESTIONS)
    assert maps.shape == (2, 12, 12) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and (maps >= 0).all() and maps.sum() > 0
    # every hook is gone and a plain no-grad forward still works
    mods = [m for kind in ("vision", "text_self", "text_cross")
            for m in untrained_tiny.attention_sites(kind)]
    assert all(not m._forward_hooks for m in mods)
    with torch.no_grad():
        assert untrained_tiny.itm_logits(images, QUESTIONS).shape == (2, 2)


def test_text_relevance_is_the_enc_row_of_r_tt_on_the_question_tokens(untrained_tiny):
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    out = methods.get("chefer_relevance").explain(untrained_tiny, images, QUESTIONS)
    rows = untrained_tiny.cross_attention_rows(untrained_tiny.tokenize(QUESTIONS)) > 0
    assert out.tokens.shape == rows.shape
    assert torch.isnan(out.tokens[~rows]).all() and torch.isfinite(out.tokens[rows]).all()
    # R^tt starts as I and only grows by non-negative terms: off-diagonal relevance ≥ 0
    assert (out.tokens[rows] >= 0).all() and out.tokens[rows].sum() > 0


def test_method_on_a_fused_model():
    from benchmark.models.embedded import tiny_adapter
    from benchmark.models.tiny import TinyConfig, Vocabulary, build_tiny_itm
    from datasets.synthetic import vocabulary

    cfg = TinyConfig(fused=True, fusion={"Lf": 1, "T": 2, "N": 2, "h": 4})
    vocab = Vocabulary.from_record(vocabulary())
    model = tiny_adapter(build_tiny_itm(cfg, vocab, seed=0).eval(), "fused", cfg, vocab, {})
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    maps = methods.get("chefer_relevance")(model, images, QUESTIONS)
    assert maps.shape == (2, 12, 12) and torch.isfinite(maps).all() and (maps >= 0).all()
