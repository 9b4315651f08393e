"""``hf-blip-vqa:PATH``: a random tiny BLIP VQA model in HF's layout. The score is the
log-probability of the answer its decoder writes, computed as HF computes it."""
import pytest
import torch

import methods
from benchmark import models
from tests.fixtures.hf_vlm import blip_vqa_folder, synthetic_batch, uncovered_parameters


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return blip_vqa_folder(tmp_path_factory.mktemp("hf-blip-vqa"))


@pytest.fixture(scope="module")
def model(folder):
    return models.load(f"hf-blip-vqa:{folder}")


@pytest.fixture(scope="module")
def batch(model):
    return synthetic_batch(model)


def hf_model(folder):
    from transformers import BlipForQuestionAnswering

    return BlipForQuestionAnswering.from_pretrained(folder, local_files_only=True).eval()


def test_the_answer_is_hfs_generate_one_question_at_a_time(model, folder, batch):
    images, questions = batch
    view = model.prepared(images, questions)
    hf = hf_model(folder)
    for i, q in enumerate(questions):
        text = model.tokenizer([q], return_tensors="pt")
        out = hf.generate(pixel_values=images[i:i + 1], input_ids=text.input_ids,
                          attention_mask=text.attention_mask, do_sample=False, num_beams=1,
                          max_new_tokens=model.max_new_tokens)[0, 1:].tolist()
        sep = model.eos_id
        out = out[:out.index(sep)] if sep in out else out
        assert view.inputs["answer"][i][view.inputs["answer"][i] >= 0].tolist() == (
            out or [sep])  # an empty answer: its end-of-sequence token


def test_the_score_is_hfs_log_probability_of_the_answer_batched_or_not(model, folder, batch):
    images, questions = batch
    view = model.prepared(images, questions)
    batched = view.itm_logits(images, questions)[:, 1]
    hf = hf_model(folder)
    for i, q in enumerate(questions):
        answer = [t for t in view.inputs["answer"][i].tolist() if t >= 0]
        text = model.tokenizer([q], return_tensors="pt")
        ids = torch.tensor([[hf.decoder_start_token_id] + answer])
        # HF's forward returns a label-smoothed loss: the log-probability from its modules
        question = hf.text_encoder(input_ids=text.input_ids,
                                   encoder_hidden_states=hf.vision_model(images[i:i + 1])[0])[0]
        logp = hf.text_decoder(input_ids=ids, encoder_hidden_states=question).logits[0]
        expected = sum(logp[:-1].log_softmax(-1)[k, t] for k, t in enumerate(answer))
        alone = view.select(slice(i, i + 1)).itm_logits(images[i:i + 1], [q])[0, 1]
        assert torch.allclose(alone, expected, atol=1e-6, rtol=1e-6)
        assert torch.allclose(batched[i], expected, rtol=1e-4)  # padding masked: rounding only


def test_chefer_does_not_apply_and_says_why(model):
    assert "read from every row" in methods.get("chefer_relevance").applicable(model)


def test_randomisation_stages_cover_every_parameter_the_score_reads(model, batch):
    assert uncovered_parameters(model, *batch) == []
    assert model.randomisation_stages()[0][0] == "answer_head"
