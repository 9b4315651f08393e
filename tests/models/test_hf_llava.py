"""``hf-llava:PATH``: a random tiny LLaVA in HF's layout, explained through the protocol. The
score is the log-probability of the model's own greedy answer, computed as HF computes it."""
import pytest
import torch

import methods
from benchmark import models
from tests.fixtures.hf_vlm import llava_folder, synthetic_batch, uncovered_parameters


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return llava_folder(tmp_path_factory.mktemp("hf-llava"))


@pytest.fixture(scope="module")
def model(folder):
    return models.load(f"hf-llava:{folder}")


@pytest.fixture(scope="module")
def batch(model):
    return synthetic_batch(model)


def hf_eager(folder):
    from transformers import LlavaForConditionalGeneration

    return LlavaForConditionalGeneration.from_pretrained(folder, local_files_only=True,
                                                         attn_implementation="eager").eval()


def hf_inputs(model, question, answer):
    """The prompt as LLaVA's processor writes it (``<image>`` expanded), then the answer."""
    lay = model.layout
    ids = model.tokenizer(lay.template.format(question=question)).input_ids
    ids = ids[:lay.image_at] + [lay.image_token] * lay.n_image + ids[lay.image_at + 1:]
    return torch.tensor([ids + answer]), len(ids)


def test_loads_with_the_grid_of_llavas_projected_patches(model):
    assert model.grid == (4, 4) and model.layout.n_image == 16
    assert model.visual_tokens(torch.zeros(1, 3, 32, 32)).shape == (1, 17, 32)


def test_the_answer_is_hfs_greedy_generation(model, folder, batch):
    images, questions = batch
    view = model.prepared(images, questions)
    hf = hf_eager(folder)
    for i, q in enumerate(questions):
        ids, _ = hf_inputs(model, q, [])
        out = hf.generate(input_ids=ids, pixel_values=images[i:i + 1], do_sample=False,
                          suppress_tokens=[model.layout.image_token],
                          max_new_tokens=model.max_new_tokens)[0, ids.shape[1]:].tolist()
        out = out[:out.index(model.tokenizer.eos_token_id)] if model.tokenizer.eos_token_id \
            in out else out
        assert view.inputs["answer"][i][view.inputs["answer"][i] >= 0].tolist() == (
            out or [model.tokenizer.eos_token_id])  # an empty answer: its end-of-sequence


def test_the_score_is_hfs_log_probability_of_the_answer_batched_or_not(model, folder, batch):
    images, questions = batch
    view = model.prepared(images, questions)
    batched = view.itm_logits(images, questions)[:, 1]
    hf = hf_eager(folder)
    for i, q in enumerate(questions):
        answer = [t for t in view.inputs["answer"][i].tolist() if t >= 0]
        ids, start = hf_inputs(model, q, answer)
        logp = hf(input_ids=ids, pixel_values=images[i:i + 1]).logits[0].log_softmax(-1)
        expected = sum(logp[start - 1 + k, t] for k, t in enumerate(answer))
        assert torch.allclose(batched[i], expected, atol=1e-5, rtol=1e-5)


def test_decoder_gradcam_equals_the_hand_computation_on_hfs_attentions(model, folder, batch):
    """Grad-CAM at decoder layer 1: the attention HF returns from the rows predicting the answer
    to the image tokens, times its positive gradient, head-averaged, row-averaged."""
    images, questions = batch
    view = model.prepared(images, questions)
    maps = methods.get("cross_attn_gradcam")(view, images, questions, block=1)
    hf = hf_eager(folder)
    lay = model.layout
    for i, q in enumerate(questions):
        answer = [t for t in view.inputs["answer"][i].tolist() if t >= 0]
        ids, start = hf_inputs(model, q, answer)
        out = hf(input_ids=ids, pixel_values=images[i:i + 1], output_attentions=True)
        logp = out.logits[0].log_softmax(-1)
        score = sum(logp[start - 1 + k, t] for k, t in enumerate(answer))
        attn = out.attentions[1]
        (grad,) = torch.autograd.grad(score, attn)
        rows = slice(start - 1, start - 1 + len(answer))
        cols = slice(lay.image_at, lay.image_at + lay.n_image)
        cam = (attn * grad.clamp(min=0))[0, :, rows, cols].mean(0).mean(0)
        assert torch.allclose(maps[i].flatten(), cam.detach(), atol=1e-7, rtol=1e-4)


def test_the_sites_leave_the_forward_as_hf_computes_it(model, folder, batch):
    images, questions = batch
    view = model.prepared(images, questions)
    ids, _ = hf_inputs(model, questions[0], [])
    ours = view.select(slice(0, 1))._forward(view.visual_tokens(images[:1]),
                                             model.tokenize(questions[:1]),
                                             torch.empty(1, 0, dtype=torch.long), None)[0]
    theirs = hf_eager(folder).model(input_ids=ids, pixel_values=images[:1]).last_hidden_state
    assert torch.equal(ours, theirs)


def test_randomisation_stages_cover_every_parameter_the_score_reads(model, batch):
    assert uncovered_parameters(model, *batch) == []
    assert [s for s, _ in model.randomisation_stages()][:3] == [
        "lm_head", "decoder_norm", "decoder_layer_1"]


def test_a_fixed_answer_is_explained_instead_of_the_greedy_one(folder, batch):
    images, questions = batch
    fixed = models.load(f"hf-llava:{folder}", answer="yes").prepared(images, questions)
    yes = fixed.tokenizer("yes", add_special_tokens=False).input_ids
    assert fixed.inputs["answer"].tolist() == [yes] * 3


def test_a_methods_answer_target_explains_the_given_answer(folder, model, batch):
    """``target=answer:yes`` explains the log-probability of "yes", as the model option does;
    ``target=answer`` the greedy answer's, as ``itm`` does."""
    images, questions = batch
    view = model.prepared(images, questions)
    fixed = models.load(f"hf-llava:{folder}", answer="yes").prepared(images, questions)
    method = methods.get("gradient_x_input")
    yes = method(view, images, questions, target="answer:yes")
    assert torch.allclose(yes, method(fixed, images, questions))
    assert not torch.allclose(yes, method(view, images, questions))
    assert torch.equal(method(view, images, questions, target="answer"),
                       method(view, images, questions))


def first_sample(model, batch, method):
    """``method``'s map of the first sample (flattened), its answer and HF's inputs for it."""
    images, questions = batch
    view = model.prepared(images[:1], questions[:1])
    got = methods.get(method)(view, images[:1], questions[:1])[0].flatten()
    answer = [t for t in view.inputs["answer"][0].tolist() if t >= 0]
    return (got, answer) + hf_inputs(model, questions[0], answer)


def test_decoder_chefer_equals_the_hand_computation_on_hfs_attentions(model, folder, batch):
    """Chefer's rule through CLIP's read layers and the decoder, from the attentions HF
    returns: the decoder R's answer rows × image columns, row-averaged, through CLIP's R̄."""
    images = batch[0]
    got, answer, ids, start = first_sample(model, batch, "chefer_relevance")
    hf, lay = hf_eager(folder), model.layout
    vis = hf.model.vision_tower(images[:1], output_hidden_states=True, output_attentions=True)
    embeds = hf.get_input_embeddings()(ids).clone()
    cols = slice(lay.image_at, lay.image_at + lay.n_image)
    embeds[:, cols] = hf.model.multi_modal_projector(vis.hidden_states[-2][:, 1:])
    out = hf.model.language_model(inputs_embeds=embeds, output_attentions=True)
    logp = hf.lm_head(out.last_hidden_state)[0].log_softmax(-1)
    score = sum(logp[start - 1 + k, t] for k, t in enumerate(answer))
    read = vis.attentions[:len(vis.attentions) - 1]  # vision_feature_layer -2
    flat = list(read) + list(out.attentions)
    bars = [(g * a).clamp(min=0).mean(1)[0] for a, g in
            zip(flat, torch.autograd.grad(score, flat))]
    r_ii = torch.eye(lay.n_image + 1)
    for bar in bars[:len(read)]:
        r_ii = r_ii + bar @ r_ii
    r = torch.eye(ids.shape[1])
    for bar in bars[len(read):]:
        r = r + bar @ r
    hat = r_ii - torch.eye(lay.n_image + 1)
    r_bar = hat / hat.sum(-1, keepdim=True) + torch.eye(lay.n_image + 1)
    tokens = torch.cat([torch.zeros(1), r[start - 1:start - 1 + len(answer), cols].mean(0)])
    assert torch.allclose(got, (tokens @ r_bar)[1:].detach(), atol=1e-7, rtol=1e-4)


def test_decoder_rollout_equals_the_hand_computation_on_hfs_attentions(model, folder, batch):
    """Rollout through every decoder layer (the answer rows × image columns, row-averaged),
    carried to the patches by CLIP's rollout over its read layers."""
    images = batch[0]
    got, answer, ids, start = first_sample(model, batch, "rollout")
    hf, lay = hf_eager(folder), model.layout
    with torch.no_grad():
        vis = hf.model.vision_tower(images[:1], output_attentions=True)
        out = hf(input_ids=ids, pixel_values=images[:1], output_attentions=True)

    def roll(attentions):
        r = torch.eye(attentions[0].shape[-1])
        for a in attentions:
            a_hat = a[0].mean(0) + torch.eye(a.shape[-1])
            r = (a_hat / a_hat.sum(-1, keepdim=True)) @ r
        return r

    cols = slice(lay.image_at, lay.image_at + lay.n_image)
    reads = roll(out.attentions)[start - 1:start - 1 + len(answer), cols].mean(0)
    expected = reads @ roll(vis.attentions[:-1])[1:, 1:]
    assert torch.allclose(got, expected, atol=1e-7, rtol=1e-4)


@pytest.mark.parametrize("mode", ["tokens", "pixels"])
def test_answer_accuracy_reads_the_answer_written_with_the_kept_patches(model, batch, mode):
    """Every patch kept: the answer is the clean greedy one; one patch kept (``tokens``: the
    decoder's attention to the others masked) is what greedy decoding writes so."""
    from metrics.downstream import _answers_with_patches

    images, questions = batch
    view = model.prepared(images, questions)
    keep = torch.ones(3, 2, 16, dtype=torch.bool)
    keep[:, 1] = False
    keep[:, 1, 5] = True
    answers = _answers_with_patches(view, images, questions, keep, mode)
    assert answers[0::2] == model.greedy_texts(images, questions)
    if mode == "tokens":
        atts = torch.zeros(3, 17, dtype=torch.long)
        atts[:, 6] = 1
        assert answers[1::2] == model.greedy_texts(images, questions, atts)
