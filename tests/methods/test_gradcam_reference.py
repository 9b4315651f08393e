"""Our cross_attn_gradcam equals LAVIS's compute_gradcam (PNP-VQA's heatmap) on shared inputs."""
import pytest
import torch

import methods
from benchmark import models
from tests.fixtures.lavis_offline import build_lavis_itm

QUESTIONS = ["what colour is the square?", "is there a red circle left of the blue triangle?",
             "how many circles are there?"]


def _lavis_mean_rows(model, images, questions, block):
    from lavis.models.blip_models.blip_image_text_matching import compute_gradcam

    tokenized = model.tokenizer(questions, padding="longest", truncation=True, max_length=40,
                                return_tensors="pt")
    cams, _ = compute_gradcam(model, images, questions, tokenized, block_num=block)
    return torch.stack([c[1] for c in cams]).reshape(len(questions), 24, 24)


def test_equals_lavis_compute_gradcam_block7_24x24_12heads():
    model = build_lavis_itm()
    images = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    # PNP-VQA's forward_itm strips "?" before compute_gradcam; so does the adapter of LAVIS's
    # pretrained ITM models, for every method
    ref = _lavis_mean_rows(model, images, [q.strip("?") for q in QUESTIONS], block=7)
    # LAVIS leaves attention saving on; reset what it left so both start from the same state
    model.text_encoder.encoder.layer[7].crossattention.self.save_attention = False
    adapter = models.wrap(model, strip_question_mark=True)
    assert adapter.grid == (24, 24)
    ours = methods.get("cross_attn_gradcam")(adapter, images, QUESTIONS, block=7)
    # Random weights give maps of ~1e-6: compare on the reference's scale so the bound means
    # something (an absolute 1e-6 would pass for any map of that size).
    scale = ref.abs().max()
    assert scale > 0 and (ref > 0).float().mean() > 0.5, "reference map is degenerate"
    assert float(((ours - ref) / scale).abs().max()) <= 1e-6


def test_question_token_relevance_is_lavis_per_token_maps_summed():
    """cross_attn_gradcam's token relevance: compute_gradcam's map of each question token (its
    rows after the mean) summed over the patches; NaN at [ENC], [SEP] and padding."""
    from lavis.models.blip_models.blip_image_text_matching import compute_gradcam

    model = build_lavis_itm()
    images = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(4))
    questions = [q.strip("?") for q in QUESTIONS]
    tokenized = model.tokenizer(questions, padding="longest", truncation=True, max_length=40,
                                return_tensors="pt")
    cams, _ = compute_gradcam(model, images, questions, tokenized, block_num=7)
    model.text_encoder.encoder.layer[7].crossattention.self.save_attention = False
    adapter = models.wrap(model, strip_question_mark=True)
    out = methods.get("cross_attn_gradcam").explain(adapter, images, QUESTIONS)
    lengths = tokenized.attention_mask.sum(1)
    for b in range(3):
        question = range(1, int(lengths[b]) - 1)
        ref = torch.stack([cams[b][t + 1].sum() for t in question])
        ours = out.tokens[b, list(question)]
        assert float((ours - ref).abs().max()) <= 1e-6 * float(ref.abs().max())
        others = [t for t in range(out.tokens.shape[1]) if t not in question]
        assert torch.isnan(out.tokens[b, others]).all()
    expected = model.tokenizer.convert_ids_to_tokens(
        tokenized.input_ids[0, 1:int(lengths[0])].tolist())
    assert adapter.token_strings(adapter.tokenize(QUESTIONS[:1]))[0] == ["[ENC]"] + expected


def test_raw_attention_equals_the_attention_lavis_saves_for_compute_gradcam():
    """raw_attention is the factor compute_gradcam multiplies by the gradient: the attention
    map LAVIS's layer saves, heads and question tokens averaged, image CLS dropped."""
    model = build_lavis_itm()
    images = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    questions = [q.strip("?") for q in QUESTIONS]
    tokenized = model.tokenizer(questions, padding="longest", truncation=True, max_length=40,
                                return_tensors="pt")
    _lavis_mean_rows(model, images, questions, block=7)
    layer = model.text_encoder.encoder.layer[7].crossattention.self
    saved = layer.get_attention_map()[..., 1:].mean(1)  # (B, L, N)
    layer.save_attention = False
    rows = tokenized.attention_mask.clone().float()
    rows[:, 0] = 0  # [ENC]
    rows[torch.arange(3), tokenized.attention_mask.sum(1) - 1] = 0  # the final [SEP]
    ref = ((saved * rows[..., None]).sum(1) / rows.sum(1, keepdim=True)).reshape(3, 24, 24)
    adapter = models.wrap(model, strip_question_mark=True)
    ours = methods.get("raw_attention")(adapter, images, QUESTIONS, block=7)
    assert float((ours - ref).abs().max()) <= 1e-6 * float(ref.abs().max())
    assert not torch.allclose(ours, ours.mean(), atol=0), "reference map is degenerate"
    gradcam = methods.get("cross_attn_gradcam")(adapter, images, QUESTIONS, block=7)
    assert not torch.allclose(ours / ours.sum(), gradcam / gradcam.sum(), rtol=0.05)


def test_raw_attention_token_relevance_is_the_last_self_attention_enc_row_lavis_returns():
    """raw_attention's question-token relevance: the [ENC] row of the text encoder's last
    self-attention layer, heads averaged, as LAVIS's BertModel returns it with
    ``output_attentions``; NaN off the question tokens."""
    model = build_lavis_itm()
    images = torch.randn(3, 3, 96, 96, generator=torch.Generator().manual_seed(5))
    questions = [q.strip("?") for q in QUESTIONS]
    tokenized = model.tokenizer(questions, padding="longest", truncation=True, max_length=40,
                                return_tensors="pt")
    ids = tokenized.input_ids.clone()
    ids[:, 0] = model.tokenizer.enc_token_id
    with torch.no_grad():
        embeds = model.visual_encoder.forward_features(images)
        out = model.text_encoder(ids, attention_mask=tokenized.attention_mask,
                                 encoder_hidden_states=embeds, output_attentions=True,
                                 encoder_attention_mask=torch.ones(embeds.shape[:-1],
                                                                   dtype=torch.long),
                                 return_dict=True)
    ref = out.attentions[-1].mean(1)[:, 0]  # (B, L)
    adapter = models.wrap(model, strip_question_mark=True)
    tokens = methods.get("raw_attention").explain(adapter, images, QUESTIONS, block=7).tokens
    lengths = tokenized.attention_mask.sum(1)
    for b in range(3):
        question = list(range(1, int(lengths[b]) - 1))
        assert torch.allclose(tokens[b, question], ref[b, question], rtol=1e-5, atol=0)
        assert torch.isnan(tokens[b, [t for t in range(tokens.shape[1])
                                      if t not in question]]).all()
    assert float(ref[:, 1:].std()) > 0, "reference rows are degenerate"


def test_leaves_model_usable_under_no_grad():
    model = build_lavis_itm(text_layers=9)
    adapter = models.wrap(model)
    images = torch.randn(2, 3, 96, 96)
    methods.get("cross_attn_gradcam")(adapter, images, QUESTIONS[:2], block=7)
    site = adapter.cross_attention_site(7)
    assert not site._forward_hooks
    assert "attention_map" not in model.text_encoder.encoder.layer[7].crossattention.self.__dict__
    with torch.no_grad():
        out = adapter.itm_logits(images, QUESTIONS[:2])
    assert out.shape == (2, 2)


@pytest.mark.parametrize("name", ["cross_attn_gradcam", "gradient_x_input", "rollout"])
def test_every_method_reads_the_question_as_the_model_tokenises_it(name):
    """PNP-VQA strips the "?" before its ITM model: on an adapter that does so, the mark is in no
    method's input; on one that does not (the tiny models, trained with it), it is in every
    method's (Grad-CAM used to strip it on its own)."""
    model = build_lavis_itm()
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(2))
    method = methods.get(name)
    stripping = models.wrap(model, strip_question_mark=True)
    plain = models.wrap(model)
    bare = [q[:-1] for q in QUESTIONS[:2]]
    assert torch.equal(method(stripping, images, QUESTIONS[:2]), method(stripping, images, bare))
    assert torch.equal(method(stripping, images, bare), method(plain, images, bare))
    assert not torch.equal(method(plain, images, QUESTIONS[:2]), method(plain, images, bare))


@pytest.mark.parametrize("grid,heads", [(12, 12), (8, 4)])
def test_any_grid_and_head_count(grid, heads):
    model = build_lavis_itm(image_size=grid * 8, patch_size=8, text_heads=heads, text_layers=4)
    adapter = models.wrap(model)
    maps = methods.get("cross_attn_gradcam")(adapter, torch.randn(2, 3, grid * 8, grid * 8),
                                            QUESTIONS[:2], block=1)
    assert maps.shape == (2, grid, grid) and maps.dtype == torch.float32
    assert torch.isfinite(maps).all() and (maps >= 0).all() and maps.abs().sum() > 0


def test_unknown_block_is_a_clear_error():
    adapter = models.wrap(build_lavis_itm(text_layers=2))
    with pytest.raises(ValueError, match="no cross-attention layer 5"):
        methods.get("cross_attn_gradcam")(adapter, torch.randn(1, 3, 96, 96), QUESTIONS[:1], block=5)
