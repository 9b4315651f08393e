"""``hf-instructblip:PATH``: a random tiny InstructBLIP (decoder-only language model) in HF's
layout, explained through the protocol. The language model reads the Q-Former's queries; the
patch grid is the ViT's, reached through the Q-Former's cross-attention."""
import pytest
import torch

import methods
from benchmark import models
from tests.fixtures.hf_vlm import (answer_of, greedy_matches_generate, instructblip_folder,
                                  score_matches_forward, synthetic_batch, uncovered_parameters)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return instructblip_folder(tmp_path_factory.mktemp("hf-instructblip"))


@pytest.fixture(scope="module")
def model(folder):
    return models.load(f"hf-instructblip:{folder}")


@pytest.fixture(scope="module")
def batch(model):
    return synthetic_batch(model)


def hf_eager(folder):
    from transformers import InstructBlipForConditionalGeneration

    return InstructBlipForConditionalGeneration.from_pretrained(
        folder, local_files_only=True, attn_implementation="eager").eval()


def hf_inputs(model, images, question, answer):
    """HF's keyword inputs for one sample as ``InstructBlipProcessor`` writes them (the image
    tokens before the BOS, the prompt in both tokenizers), then the answer; and the answer's
    first position."""
    prompt = model.layout.template.format(question=question)
    ids = [model.layout.image_token] * model.n_queries + model.tokenizer(prompt).input_ids
    return dict(input_ids=torch.tensor([ids + answer]), pixel_values=images,
                qformer_input_ids=torch.tensor([model.qformer_tokenizer(prompt).input_ids])
                ), len(ids)


def test_the_grid_is_the_vits_and_the_language_model_reads_the_queries(model, batch):
    images, _ = batch
    assert model.grid == (4, 4) and model.layout.n_image == model.n_queries == 4
    assert model.visual_tokens(images).shape == (3, 17, 32)
    assert len(model.attention_sites("text_cross")) == 2 and model.default_block == 1


def test_the_answer_is_hfs_greedy_generation(model, folder, batch):
    greedy_matches_generate(model, hf_eager(folder), *batch, hf_inputs)


def test_the_score_is_hfs_log_probability_of_the_answer_batched_or_not(model, folder, batch):
    score_matches_forward(model, hf_eager(folder), *batch, hf_inputs)


def hf_score_and_attentions(model, folder, images, question, answer):
    hf = hf_eager(folder)
    # HF's forward does not hand the flag down to the Q-Former and the ViT
    hf.qformer.config.output_attentions = hf.vision_model.config.output_attentions = True
    inputs, start = hf_inputs(model, images, question, answer)
    out = hf(**inputs, output_attentions=True)
    logp = out.logits[0].log_softmax(-1)
    score = sum(logp[start - 1 + k, t] for k, t in enumerate(answer))
    return score, out.qformer_outputs.cross_attentions, out.vision_outputs.attentions


def test_gradcam_on_the_qformer_equals_the_hand_computation_on_hfs_attentions(model, folder,
                                                                             batch):
    """Grad-CAM at cross-attention layer 1 (Q-Former layer 2): the queries' attention to the
    patches HF returns, times its positive gradient, averaged over heads and queries."""
    images, questions = batch
    view = model.prepared(images, questions)
    maps = methods.get("cross_attn_gradcam")(view, images, questions, block=1)
    for i, q in enumerate(questions):
        score, cross, _ = hf_score_and_attentions(model, folder, images[i:i + 1], q,
                                                  answer_of(view, i))
        attn = [a for a in cross if a is not None][1]
        (grad,) = torch.autograd.grad(score, attn)
        cam = (attn * grad.clamp(min=0))[0].mean(0).mean(0)[1:]
        assert torch.allclose(maps[i].flatten(), cam.detach(), atol=1e-7, rtol=1e-4)


def test_rollout_is_the_qformers_route_to_the_patches(model, folder, batch):
    """The queries' mean cross-attention at the default layer, carried through the ViT's
    rollout (BLIP-2's route)."""
    images, questions = batch
    view = model.prepared(images[:1], questions[:1])
    got = methods.get("rollout")(view, images[:1], questions[:1])[0].flatten()
    with torch.no_grad():
        _, cross, vision = hf_score_and_attentions(model, folder, images[:1], questions[0],
                                                   answer_of(view, 0))
    r = torch.eye(17)
    for a in vision:
        a_hat = a[0].mean(0) + torch.eye(17)
        r = (a_hat / a_hat.sum(-1, keepdim=True)) @ r
    reads = [a for a in cross if a is not None][model.default_block][0].mean(0).mean(0)
    assert torch.allclose(got, reads @ r[:, 1:], atol=1e-7, rtol=1e-4)


def test_masked_patches_are_not_read(model, batch):
    """``image_atts`` masks patches in the Q-Former's cross-attention: the score then does not
    depend on them."""
    images, questions = batch
    view = model.prepared(images, questions)
    atts = torch.ones(3, 17, dtype=torch.long)
    atts[:, 1:9] = 0
    other = images.clone()
    other[:, :, :16] = 0  # the top half: patches 1-8
    tokens = view.visual_tokens(images)
    changed = view.visual_tokens(other)
    changed[:, 9:] = tokens[:, 9:]  # only the masked patches differ
    text = model.tokenize(questions)
    assert torch.allclose(view.text_hidden(tokens, text, atts),
                          view.text_hidden(changed, text, atts), atol=1e-6)
    assert not torch.allclose(view.text_hidden(tokens, text), view.text_hidden(changed, text),
                              atol=1e-4)


def test_randomisation_stages_cover_every_parameter_the_score_reads(model, batch):
    assert uncovered_parameters(model, *batch) == []
    assert [s for s, _ in model.randomisation_stages()][:3] == [
        "lm_head", "decoder_norm", "decoder_layer_1"]
