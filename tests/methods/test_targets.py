"""Targets are objects: each equals the head output it names, and a new one needs no edit to any
method."""
import pytest
import torch

import methods
from benchmark.cli.main import main
from methods.targets import TARGETS, Target, parse_target, register_target

QUESTIONS = ["what colour is the square?", "is there a red circle?"]


@pytest.fixture(scope="module")
def hidden(trained_tiny):
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        text = trained_tiny.tokenize(QUESTIONS)
        return trained_tiny.text_hidden(trained_tiny.visual_tokens(images), text)[:, 0]


def test_each_target_is_the_head_output_it_names(trained_tiny, hidden):
    m = trained_tiny.module
    with torch.no_grad():
        itm, vqa = m.itm_head(hidden), m.vqa_head(hidden)
        assert torch.equal(parse_target("itm")(trained_tiny, hidden), itm[:, 1])
        assert torch.equal(parse_target("itm_prob")(trained_tiny, hidden), itm.softmax(-1)[:, 1])
        assert torch.equal(parse_target("answer")(trained_tiny, hidden), vqa.max(-1).values)
        k = list(trained_tiny.answers).index("yes")
        assert torch.equal(parse_target("answer:yes")(trained_tiny, hidden), vqa[:, k])


def test_bad_targets_are_one_line_errors(capsys, tmp_path):
    for spec, needle in (("bogus", "unknown target 'bogus'"), ("itm:x", "takes no argument")):
        argv = ["--models", "blip-itm-tiny", "--methods", "cross_attn_gradcam", "--method-option",
                f"cross_attn_gradcam.target={spec}", "--out", str(tmp_path)]
        assert main(argv) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and needle in err[0], err


def test_a_new_target_is_one_class(trained_tiny, monkeypatch):
    @register_target("no_match_logit")
    class NoMatchLogit(Target):
        def __call__(self, model, enc_hidden):
            return model.match_head(enc_hidden)[:, 0]

    try:
        images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
        gradcam = methods.get("cross_attn_gradcam")
        new = gradcam(trained_tiny, images, QUESTIONS, target="no_match_logit")
        old = gradcam(trained_tiny, images, QUESTIONS)
        assert new.shape == old.shape and not torch.allclose(new, old)
    finally:
        TARGETS._items.pop("no_match_logit")
