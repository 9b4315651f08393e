"""A model family from one file: Hugging Face's ``BlipForImageTextRetrieval`` (``hf-blip-itm:PATH``),
on a tiny random config saved with ``save_pretrained``, as a researcher's folder would be."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import methods
from benchmark import models
from benchmark.cli.main import dataset_metrics
from tests.fixtures.cli_helpers import SMALL_METRIC_BUDGETS

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ["is there a red circle?", "what colour is the square?"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A random-weight BLIP ITM (64 px, 8 px patches, 2 vision + 3 text layers) in HF's on-disk layout,
    with its BERT tokenizer and an image processor holding BLIP's mean/std."""
    from transformers import BertTokenizer, BlipConfig, BlipForImageTextRetrieval, BlipImageProcessor

    from benchmark.models.blip import BLIP_MEAN, BLIP_STD

    path = tmp_path_factory.mktemp("hf-blip-itm")
    tok = BertTokenizer(vocab_file=str(ROOT / "benchmark" / "models" / "vocab.txt"))
    cfg = BlipConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=3,
                         num_attention_heads=4, intermediate_size=64, max_position_embeddings=40,
                         encoder_hidden_size=32),
        # BlipVisionConfig's default initializer_range (1e-10) would leave the random tower
        # all but constant: the match would ignore the image
        vision_config=dict(hidden_size=32, image_size=64, patch_size=8, num_hidden_layers=2,
                           num_attention_heads=4, intermediate_size=64, initializer_range=0.02))
    torch.manual_seed(0)
    BlipForImageTextRetrieval(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    BlipImageProcessor(size={"height": 64, "width": 64}, image_mean=list(BLIP_MEAN),
                       image_std=list(BLIP_STD)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model(folder):
    return models.load(f"hf-blip-itm:{folder}")


def test_loads_with_the_folders_own_preprocessing_and_grid(model):
    assert model.grid == (8, 8) and model.image_size == 64
    assert model.preprocessing.resample == "bicubic"
    assert model.preprocessing.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    assert not model.has_answer_head and model.fingerprint


def test_match_logits_are_hfs_own_forward(model):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    text = model.tokenize(QUESTIONS)
    with torch.no_grad():
        ref = model.module(input_ids=text.input_ids, pixel_values=x,
                           attention_mask=text.attention_mask).itm_score
        assert torch.allclose(model.itm_logits(x, QUESTIONS), ref, atol=1e-6)


def test_cross_attention_gradcam_equals_the_hand_computation_on_hfs_attention_outputs(model):
    """HF's attention layers return their probabilities when asked (``output_attentions``); the
    Grad-CAM of PNP-VQA on them, written out here, equals the method's map. (HF's BLIP text
    encoder drops cross-attentions from its returned tuple, so the layer's output is hooked.)"""
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    block = model.default_block  # 1 of 3 (the last layer only reaches the head through [CLS])
    layer = model.module.text_encoder.encoder.layer[block].crossattention.self
    seen = {}
    handle = layer.register_forward_hook(lambda _m, _a, out: seen.update(probs=out[1]))
    try:
        text = model.tokenize([q.strip("?") for q in QUESTIONS])
        hf = model.module  # BlipForImageTextRetrieval.forward, asking the text encoder for attention
        image = hf.vision_model(pixel_values=x).last_hidden_state
        hidden = hf.text_encoder(input_ids=text.input_ids, attention_mask=text.attention_mask,
                                 encoder_hidden_states=image,
                                 encoder_attention_mask=torch.ones(image.shape[:2], dtype=torch.long),
                                 output_attentions=True).last_hidden_state
        (grad,) = torch.autograd.grad(hf.itm_head(hidden[:, 0])[:, 1].sum(), seen["probs"])
    finally:
        handle.remove()
    cam = (seen["probs"][..., 1:] * grad[..., 1:].clamp(min=0)).mean(1).detach()  # (B, L, N)
    lengths = text.attention_mask.sum(1)
    ref = torch.stack([cam[i, 1:lengths[i] - 1].mean(0) for i in range(2)]).reshape(2, 8, 8)
    ours = methods.get("cross_attn_gradcam")(model, x, QUESTIONS, block=block)
    assert torch.allclose(ours, ref, atol=1e-7 + 1e-5 * float(ref.abs().max()))
    assert float(ref.abs().max()) > 0


@pytest.mark.parametrize("name", ["rollout", "chefer_relevance", "fused_gradcam",
                                  "integrated_gradients", "gradient_x_input"])
def test_every_attention_and_gradient_method_gives_a_map(model, name):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    maps = methods.get(name)(model, x, QUESTIONS, **({"max_steps": 64} if "integrated" in name
                                                      else {}))
    assert maps.shape == (2, 8, 8) and torch.isfinite(maps).all()


def test_randomisation_stages_cover_every_parameter_of_the_itm_forward(model):
    covered = {id(p) for _, members in model.randomisation_stages() for m in members
               for p in (m.parameters() if isinstance(m, torch.nn.Module) else [m])}
    used = [n for n, p in model.module.named_parameters()
            if not n.startswith(("vision_proj", "text_proj")) and id(p) not in covered]
    assert used == []


def test_every_method_and_metric_through_the_cli(folder, tmp_path):
    """No edit outside the adapter file: the main command runs it with every method and metric;
    the head-based VQA metrics are "not applicable" on a model without a VQA head."""
    out = tmp_path / "run"
    spec = f"hf-blip-itm:{folder}"
    r = subprocess.run([sys.executable, "-m", "benchmark", "--models", spec, "--methods", "all",
                        "--metrics", "all", "--limit", "2", "--batch-size", "2",
                        "--sanity-samples", "2", "--steps", "4",
                        "--method-option", "integrated_gradients.max_steps=64",
                        *SMALL_METRIC_BUDGETS, "--out", str(out), "--quiet", "--no-report"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    assert set(rows.model) == {spec}
    assert set(rows.method) == set(methods.available())
    pointing = rows[(rows.metric == "pointing_game") & (rows.region == "target")]
    assert pointing.groupby("method").value.count().min() == 2  # a value for every sample
    head = rows[rows.metric == "vqa_keep_auc"]
    assert head.value.isna().all()
    assert head.note.fillna("").str.startswith("not applicable").all()
    deletion = rows[(rows.metric == "deletion_auc") & rows.value.notna()]
    assert set(deletion.method) >= {"cross_attn_gradcam", "rollout", "chefer_relevance"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"][spec]["source"] == str(Path(folder).resolve())
    sanity = pd.read_csv(out / "sanity.csv")
    # every metric that applies to the synthetic data ran
    modality = pd.read_csv(out / "modality.csv")
    assert set(dataset_metrics("all", "synthetic")) <= \
        set(rows.metric) | set(sanity.test) | set(modality.metric)
    assert sanity[sanity.test == "sanity_mprt"].n.gt(0).any()


def test_a_folder_without_a_model_is_one_line_and_an_exit(tmp_path):
    r = subprocess.run([sys.executable, "-m", "benchmark", "--models",
                        f"hf-blip-itm:{tmp_path}", "--limit", "2", "--out", str(tmp_path / "o")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0
    assert "no config.json there" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([sys.executable, "-m", "benchmark", "--models", "hf-blip-itm",
                        "--limit", "2", "--out", str(tmp_path / "o")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and "hf-blip-itm:PATH" in r.stderr


def test_masked_patches_are_not_read(model):
    """``image_atts`` restricts what the cross-attention reads (transformers 4.57 drops BLIP's
    encoder mask: ``mask_cross_attention`` gives it back): masking patches equals removing them."""
    x = torch.rand(1, 3, 64, 64)
    text = model.tokenize(QUESTIONS[:1])
    tokens = model.visual_tokens(x)
    keep = torch.ones(1, tokens.shape[1], dtype=torch.long)
    keep[:, 5:] = 0
    masked = model.text_hidden(tokens, text, keep)
    removed = model.text_hidden(tokens[:, :5], text)
    assert torch.allclose(masked, removed, atol=1e-6)
