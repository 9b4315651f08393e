"""Memory-bounded batching: no pass of a run takes more than ``--max-batch-images`` images, the
numbers stay those of the unbounded run, and the automatic bound follows the memory budget."""
import numpy as np
import pandas as pd
import torch

from benchmark import models
from benchmark.cli.main import main
from benchmark.models.memory import activation_bytes, images_within
from benchmark.models.blip import BlipAdapter
from benchmark.models.blip2 import Blip2Adapter
from benchmark.models.fused import FusedBlipAdapter
from tests.fixtures.lavis_offline import register_random_blip2

ARGS = ["--models", "difnet-itm-tiny", "--methods",
        "cross_attn_gradcam,integrated_gradients,gradient_x_input,random", "--metrics",
        "pointing_game,deletion_auc,insertion_auc,vqa_keep_auc,vqa_drop_auc,object_faithfulness,"
        "random_logit", "--limit", "6", "--batch-size", "6", "--steps", "4",
        "--sanity-samples", "4", "--method-option", "integrated_gradients.max_steps=16", "--quiet",
        "--no-report"]


def _recording(monkeypatch, classes=(BlipAdapter, FusedBlipAdapter)) -> list:
    """Patch the adapters' visual and text passes to record how many rows each one takes."""
    sizes = []
    for cls in classes:
        for name in ("visual_tokens", "text_hidden"):
            original = cls.__dict__.get(name)
            if original is None:
                continue

            def wrapper(self, x, *args, _original=original, **kwargs):
                sizes.append(x.shape[0])
                return _original(self, x, *args, **kwargs)

            monkeypatch.setattr(cls, name, wrapper)
    return sizes


def test_no_pass_takes_more_than_max_batch_images_and_the_numbers_hold(tmp_path, monkeypatch):
    assert main(ARGS + ["--out", str(tmp_path / "whole")]) == 0
    sizes = _recording(monkeypatch)
    assert main(ARGS + ["--max-batch-images", "3", "--out", str(tmp_path / "bounded")]) == 0
    assert sizes and max(sizes) <= 3, sorted(set(sizes))
    whole = pd.read_csv(tmp_path / "whole" / "results.csv")
    bounded = pd.read_csv(tmp_path / "bounded" / "results.csv")
    assert len(whole) == len(bounded)
    valued = whole.value.notna()
    assert valued.sum() > 100 and (valued == bounded.value.notna()).all()
    # batch sizes move floating-point sums in their last bits, nothing more
    assert np.allclose(whole.value[valued], bounded.value[valued], rtol=1e-3, atol=1e-4)
    for run in ("whole", "bounded"):
        sanity = pd.read_csv(tmp_path / run / "sanity.csv")
        assert sanity["mean"].notna().any()


def test_the_automatic_bound_follows_the_budget_and_leaves_the_tiny_models_unbounded():
    model = models.load("blip-itm-tiny")
    per_image = activation_bytes(model)
    assert per_image > 0
    assert images_within(model, 1.0) == int(2 ** 30 // per_image)
    assert images_within(model, 2.0) >= 2 * images_within(model, 1.0) - 1
    assert images_within(model, 1e-9) == 1
    # the default 8 GB holds more than any batch of the default run takes (256): the tiny
    # models' numbers are those of an unbounded run
    assert images_within(model, 8.0) >= 256


def test_the_estimate_grows_with_the_architecture():
    from benchmark.models.pretrained import build_blip_itm
    from benchmark.models.tiny import _tokenizer

    one = models.wrap(build_blip_itm("base", _tokenizer(), vit_depth=1, text_layers=1))
    two = models.wrap(build_blip_itm("base", _tokenizer(), vit_depth=2, text_layers=1))
    a, b = activation_bytes(one), activation_bytes(two)
    assert 1.3 * a < b < 2.2 * a  # a second ViT block of 577 tokens adds about one block's worth
    with torch.no_grad():
        assert images_within(one, 8.0) > images_within(two, 8.0)


def test_a_run_folder_refuses_a_model_whose_weights_changed(tmp_path, monkeypatch, capsys):
    args = ["--models", "blip-itm-tiny", "--methods", "center", "--metrics", "pointing_game",
            "--limit", "2", "--out", str(tmp_path / "run"), "--quiet", "--no-report"]
    assert main(args) == 0
    original = models.get("blip-itm-tiny")

    def other_weights(**options):
        model = original(**options)
        with torch.no_grad():
            model.module.itm_head.bias.add_(1.0)
        model.info = dict(model.info, fingerprint="changed")
        return model

    other_weights.missing, other_weights.argument, other_weights.reads = \
        original.missing, original.argument, original.reads
    monkeypatch.setitem(models.REGISTRY._items, "blip-itm-tiny", other_weights)
    # a unit left to compute (as after a kill): the model loads again
    (tmp_path / "run" / "cache" / "blip-itm-tiny" / "center" / "batch-00000.json").unlink()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is not the one this run folder was started with" in err


def test_blip2s_passes_are_bounded_too(tmp_path, monkeypatch):
    """The Q-Former model (tiny random LAVIS ``Blip2ITM``) goes through the same bounded passes:
    maps, IG's path points, curve images and the sanity check's explains."""
    name = register_random_blip2(monkeypatch)
    args = ["--models", name, "--methods", "cross_attn_gradcam,integrated_gradients,rollout",
            "--metrics", "deletion_auc,insertion_auc,random_logit", "--limit", "4",
            "--batch-size", "4", "--steps", "4", "--sanity-samples", "2", "--method-option",
            "integrated_gradients.max_steps=16", "--quiet", "--no-report"]
    assert main(args + ["--out", str(tmp_path / "whole")]) == 0
    sizes = _recording(monkeypatch, (Blip2Adapter,))
    assert main(args + ["--max-batch-images", "2", "--out", str(tmp_path / "bounded")]) == 0
    assert sizes and max(sizes) <= 2, sorted(set(sizes))
    whole = pd.read_csv(tmp_path / "whole" / "results.csv")
    bounded = pd.read_csv(tmp_path / "bounded" / "results.csv")
    valued = whole.value.notna()
    assert valued.sum() > 20 and (valued == bounded.value.notna()).all()
    # IG's completeness gap is the difference of two near-equal sums (0.1% of the score change
    # here): the batch's last-bit changes move it by more than the tolerance, and nothing else
    gap = whole.metric.str.startswith("completeness")
    same = valued & ~gap
    assert np.allclose(whole.value[same], bounded.value[same], rtol=1e-3, atol=1e-4)
    assert np.allclose(whole.value[valued & gap], bounded.value[valued & gap], atol=1e-3)
