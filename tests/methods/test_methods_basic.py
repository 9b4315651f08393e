import pytest
import torch

import methods

QUESTIONS = ["what colour is the square?", "how many circles are there?"]


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))


def test_registry_lists_builtin_methods():
    names = methods.available()
    for n in ("cross_attn_gradcam", "fused_gradcam", "random", "center"):
        assert n in names


def test_unknown_method_message_lists_known_names():
    with pytest.raises(KeyError) as e:
        methods.get("gradcam++")
    msg = str(e.value)
    assert "unknown method 'gradcam++'" in msg and "cross_attn_gradcam" in msg and "\n" not in msg


@pytest.mark.parametrize("name", ["cross_attn_gradcam", "fused_gradcam", "random", "center"])
def test_every_method_returns_a_float_map_on_the_grid(untrained_tiny, images, name):
    maps = methods.get(name)(untrained_tiny, images, QUESTIONS)
    assert maps.shape == (2, 12, 12) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all()


def test_random_is_seeded_and_center_peaks_in_the_middle(untrained_tiny, images):
    r = methods.get("random")
    assert torch.equal(r(untrained_tiny, images, QUESTIONS, seed=3), r(untrained_tiny, images, QUESTIONS, seed=3))
    assert not torch.equal(r(untrained_tiny, images, QUESTIONS, seed=3), r(untrained_tiny, images, QUESTIONS, seed=4))
    c = methods.get("center")(untrained_tiny, images, QUESTIONS)[0]
    assert c[5:7, 5:7].min() == c.max()
    # its maps are the generator's first draw, its question-token noise comes after them
    out = r.explain_with(untrained_tiny, images, QUESTIONS, seed=3)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(out.maps, torch.rand(out.maps.shape, generator=g))
    rows = untrained_tiny.cross_attention_rows(untrained_tiny.tokenize(QUESTIONS)) > 0
    assert torch.isfinite(out.tokens[rows]).all() and torch.isnan(out.tokens[~rows]).all()


def test_fused_gradcam_equals_hand_written_vit_gradcam_on_the_baseline(untrained_tiny, images):
    model = untrained_tiny
    ours = methods.get("fused_gradcam")(model, images, QUESTIONS)
    # by hand: ViT output tokens, gradient of the match logit, channel weights, ReLU
    tokens = model.module.visual_encoder.forward_features(images).detach().requires_grad_(True)
    text = model.tokenize(QUESTIONS)
    out = model.module.text_encoder(text.input_ids, attention_mask=text.attention_mask,
                                   encoder_hidden_states=tokens,
                                   encoder_attention_mask=torch.ones(tokens.shape[:2], dtype=torch.long),
                                   return_dict=True)
    model.module.itm_head(out.last_hidden_state[:, 0])[:, 1].sum().backward()
    w = tokens.grad[:, 1:].mean(1)  # (B, C)
    ref = torch.relu(torch.einsum("bnc,bc->bn", tokens[:, 1:].detach(), w)).reshape(2, 12, 12)
    assert ref.abs().max() > 0
    assert torch.allclose(ours, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max()))
