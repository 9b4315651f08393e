"""``hf-qwen2-vl:PATH``: a random tiny Qwen2-VL in HF's layout, explained through the protocol.
The patches are the ones Qwen2-VL's processor writes, the positions its M-RoPE ones, the score
the log-probability of its own greedy answer as HF computes it."""
import pytest
import torch

import methods
from benchmark import models
from tests.fixtures.hf_vlm import (answer_of, greedy_matches_generate, qwen2_vl_folder,
                                  score_matches_forward, synthetic_batch, uncovered_parameters)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return qwen2_vl_folder(tmp_path_factory.mktemp("hf-qwen2-vl"))


@pytest.fixture(scope="module")
def model(folder):
    return models.load(f"hf-qwen2-vl:{folder}")


@pytest.fixture(scope="module")
def batch(model):
    return synthetic_batch(model)


def hf_eager(folder):
    from transformers import Qwen2VLForConditionalGeneration

    return Qwen2VLForConditionalGeneration.from_pretrained(
        folder, local_files_only=True, attn_implementation="eager").eval()


def hf_inputs(model, images, question, answer):
    """HF's keyword inputs for one sample as Qwen2-VL's processor writes them (the image pad
    expanded to one token per merged patch, the patches flattened, the grid), then the answer;
    and the answer's first position."""
    from transformers import Qwen2VLImageProcessor

    lay = model.layout
    ids = model.tokenizer(lay.template.format(question=question)).input_ids
    ids = ids[:lay.image_at] + [lay.image_token] * lay.n_image + ids[lay.image_at + 1:]
    out = Qwen2VLImageProcessor(patch_size=4, merge_size=2, do_resize=False, do_rescale=False,
                                do_normalize=False)(images.numpy(), return_tensors="pt")
    return dict(input_ids=torch.tensor([ids + answer]), pixel_values=out.pixel_values,
                image_grid_thw=out.image_grid_thw), len(ids)


def test_the_grid_is_the_merged_patches_and_the_patches_are_the_processors(model, batch):
    images, _ = batch
    assert model.grid == (4, 4) and model.layout.n_image == 16 and images.shape[-1] == 32
    inputs, _ = hf_inputs(model, images[:2], "?", [])
    assert torch.equal(model.patches(images[:2]), inputs["pixel_values"])
    assert inputs["image_grid_thw"].tolist() == [[1, 8, 8]] * 2
    assert model.visual_tokens(images).shape == (3, 17, 32)


def test_the_answer_is_hfs_greedy_generation(model, folder, batch):
    greedy_matches_generate(model, hf_eager(folder), *batch, hf_inputs)


def test_the_score_is_hfs_log_probability_of_the_answer_batched_or_not(model, folder, batch):
    score_matches_forward(model, hf_eager(folder), *batch, hf_inputs)


def test_decoder_gradcam_equals_the_hand_computation_on_hfs_attentions(model, folder, batch):
    """Grad-CAM at decoder layer 1 from the attention HF returns (M-RoPE positions computed by
    HF itself): the answer rows × the image tokens, times the positive gradient, averaged."""
    images, questions = batch
    view = model.prepared(images, questions)
    maps = methods.get("cross_attn_gradcam")(view, images, questions, block=1)
    hf, lay = hf_eager(folder), model.layout
    for i, q in enumerate(questions):
        answer = answer_of(view, i)
        inputs, start = hf_inputs(model, images[i:i + 1], q, answer)
        out = hf(**inputs, output_attentions=True)
        logp = out.logits[0].log_softmax(-1)
        score = sum(logp[start - 1 + k, t] for k, t in enumerate(answer))
        (grad,) = torch.autograd.grad(score, out.attentions[1])
        rows = slice(start - 1, start - 1 + len(answer))
        cols = slice(lay.image_at, lay.image_at + lay.n_image)
        cam = (out.attentions[1] * grad.clamp(min=0))[0, :, rows, cols].mean(0).mean(0)
        assert torch.allclose(maps[i].flatten(), cam.detach(), atol=1e-7, rtol=1e-4)


def test_decoder_rollout_stops_at_the_merged_patches(model, folder, batch):
    """Rollout through every decoder layer, answer rows × image columns, row-averaged: no vision
    sites, so that is the map."""
    images, questions = batch
    view = model.prepared(images[:1], questions[:1])
    got = methods.get("rollout")(view, images[:1], questions[:1])[0].flatten()
    answer, lay = answer_of(view, 0), model.layout
    inputs, start = hf_inputs(model, images[:1], questions[0], answer)
    with torch.no_grad():
        attentions = hf_eager(folder)(**inputs, output_attentions=True).attentions
    r = torch.eye(attentions[0].shape[-1])
    for a in attentions:
        a_hat = a[0].mean(0) + torch.eye(a.shape[-1])
        r = (a_hat / a_hat.sum(-1, keepdim=True)) @ r
    expected = r[start - 1:start - 1 + len(answer), lay.image_at:lay.image_at + lay.n_image]
    assert torch.allclose(got, expected.mean(0), atol=1e-7, rtol=1e-4)


def test_randomisation_stages_cover_every_parameter_the_score_reads(model, batch):
    assert uncovered_parameters(model, *batch) == []
    assert [s for s, _ in model.randomisation_stages()][-2:] == ["vision_block_0", "patch_embed"]


def test_image_size_is_rounded_as_the_processor_rounds_it(folder):
    """The fixture's processor holds every image at 32×32 pixels (its pixel bounds)."""
    assert models.load(f"hf-qwen2-vl:{folder}", image_size=100).grid == (4, 4)
