"""BLIP-2 image-text matching (LAVIS ``Blip2ITM``) behind the protocol, on a tiny random config
(EVA ViT of 2 blocks, a 4-layer Q-Former with a cross-attention every second layer, 8 queries)."""
import pandas as pd
import pytest
import torch

import methods
from benchmark import models
from benchmark.cli.main import main
from benchmark.models.blip2 import Blip2Adapter
from benchmark.core.errors import NotApplicable
from tests.fixtures.lavis_offline import build_lavis_blip2_itm, register_random_blip2

QUESTIONS = ["what colour is the square", "is there a red circle left of the blue triangle"]


@pytest.fixture(scope="module")
def blip2():
    return build_lavis_blip2_itm()


def _images(n=2, seed=0):
    return torch.randn(n, 3, 96, 96, generator=torch.Generator().manual_seed(seed))


def test_the_match_logit_is_lavis_blip2_itm(blip2):
    adapter = models.wrap(blip2)
    assert isinstance(adapter, Blip2Adapter) and adapter.grid == (6, 6)
    images = _images()
    with torch.no_grad():
        ours = adapter.itm_logits(images, QUESTIONS)
        # LAVIS tokenises without padding: one question per call
        ref = torch.cat([blip2({"image": images[i:i + 1], "text_input": [q]}, match_head="itm")
                         for i, q in enumerate(QUESTIONS)])
    assert torch.allclose(ours, ref, atol=1e-5), (ours, ref)


def test_cross_attention_gradcam_is_the_queries_attention_weighted_by_the_match_gradient(blip2):
    """Against LAVIS's own attention saving in the Q-Former (``save_attention``): A·max(G, 0),
    mean over heads and the queries, image CLS dropped."""
    adapter = models.wrap(blip2)
    images = _images(1, seed=1)
    question = QUESTIONS[0]
    layer = [la for la in blip2.Qformer.bert.encoder.layer if la.has_cross_attention][
        adapter.default_block]
    layer.crossattention.self.save_attention = True
    try:
        logit = blip2({"image": images, "text_input": [question]}, match_head="itm")
        blip2.zero_grad()
        logit[:, 1].sum().backward()
        attn = layer.crossattention.self.get_attention_map()
        grad = layer.crossattention.self.get_attn_gradients()
    finally:
        layer.crossattention.self.save_attention = False
    ref = (attn[..., 1:] * grad[..., 1:].clamp(min=0)).mean(1).mean(1).reshape(1, 6, 6)
    ours = methods.get("cross_attn_gradcam")(adapter, images, [question])
    scale = ref.abs().max()
    assert scale > 0 and float(((ours - ref) / scale).abs().max()) <= 1e-5


def test_every_method_explains_blip2_or_says_why_not(blip2):
    adapter = models.wrap(blip2)
    images = _images()
    for name in ("cross_attn_gradcam", "rollout", "fused_gradcam", "gradient_x_input",
                 "random", "center"):
        maps = methods.get(name)(adapter, images, QUESTIONS, seed=0)
        assert maps.shape == (2, 6, 6) and torch.isfinite(maps).all(), name
    ig = methods.get("integrated_gradients").explain(adapter, images, QUESTIONS, n_steps=16,
                                                     max_steps=16)
    assert ig.maps.shape == (2, 6, 6) and torch.isfinite(ig.maps).all()
    assert float(ig.diagnostics["completeness_rel_delta"].values.max()) < 1.0
    with pytest.raises(NotApplicable, match="every other layer"):
        methods.get("chefer_relevance")(adapter, images, QUESTIONS)


def test_the_sanity_stages_cover_every_parameter_the_match_uses(blip2):
    adapter = models.wrap(blip2)
    for p in blip2.parameters():
        p.requires_grad_(True)  # LAVIS freezes the ViT; the check needs its gradients
    blip2.zero_grad()
    adapter.itm_logits(_images(), QUESTIONS)[:, 1].sum().backward()
    used = {id(p) for p in blip2.parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    covered = set()
    for _, members in adapter.randomisation_stages():
        for m in members:
            covered |= {id(p) for p in m.parameters()} if isinstance(m, torch.nn.Module) \
                else {id(m)}
    assert used and used <= covered


def test_blip2_through_the_cli(blip2, tmp_path, monkeypatch):
    name = register_random_blip2(monkeypatch)
    out = tmp_path / "run"
    assert main(["--models", name, "--methods", "all", "--metrics",
                 "pointing_game,relevance_rank,deletion_auc,insertion_auc,vqa_keep_auc,random_logit",
                 "--limit", "2", "--steps", "4", "--sanity-samples", "2", "--method-option",
                 "integrated_gradients.max_steps=32", "--out", str(out), "--quiet",
                 "--no-report"]) == 0
    rows = pd.read_csv(out / "results.csv")
    gradcam = rows[(rows.method == "cross_attn_gradcam") & (rows.metric == "deletion_auc")]
    assert len(gradcam) and gradcam.value.notna().all()
    chefer = rows[rows.method == "chefer_relevance"]
    assert chefer.note.dropna().str.contains("every other layer").all()
    assert rows[rows.metric == "vqa_keep_auc"].value.isna().all()  # no VQA head


# ------------------------------------------------------------------ LAVIS's files from disk

REDUCED = {"vit_depth": 1, "qformer_layers": 2}


@pytest.fixture(scope="module")
def blip2_files(tmp_path_factory):
    """LAVIS's two BLIP-2 files (EVA ViT-g, Q-Former checkpoint) at reduced depth, random
    weights, and a bert-base-uncased-sized vocabulary."""
    from tests.fixtures.real_layout import bert_vocab, lavis_blip2_checkpoints

    root = tmp_path_factory.mktemp("blip2")
    tokenizer = bert_vocab(root / "tokenizer" / "vocab.txt").parent
    state = lavis_blip2_checkpoints(root / "weights", tokenizer, **REDUCED)
    return root / "weights", tokenizer, state


def _reduced(monkeypatch, name="blip2-itm-reduced"):
    from benchmark.models.pretrained_blip2 import register_blip2_itm

    monkeypatch.setattr(models.REGISTRY, "_items", dict(models.REGISTRY._items))
    register_blip2_itm(name, **REDUCED)
    return name


def test_blip2_from_lavis_files_loads_every_weight_and_runs(blip2_files, tmp_path, monkeypatch):
    weights, tokenizer, state = blip2_files
    name = _reduced(monkeypatch)
    model = models.load(name, weights_dir=str(weights), tokenizer_dir=str(tokenizer))
    assert isinstance(model, Blip2Adapter) and model.grid == (16, 16)  # EVA/14 at 224 px
    loaded = model.module.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert len(model.tokenizer) == 30523  # bert-base-uncased + [DEC], as Blip2Base makes it
    out = tmp_path / "run"
    assert main(["--models", name, "--weights-dir", str(weights), "--tokenizer-dir",
                 str(tokenizer), "--methods", "cross_attn_gradcam,random", "--metrics",
                 "pointing_game,deletion_auc", "--limit", "1", "--steps", "4", "--out",
                 str(out), "--quiet", "--no-report"]) == 0
    rows = pd.read_csv(out / "results.csv")
    assert rows[(rows.method == "cross_attn_gradcam") & (rows.metric == "deletion_auc")
                ].value.notna().all()


def test_blip2_files_of_another_architecture_are_refused(blip2_files, tmp_path, monkeypatch):
    from benchmark.core.errors import InputError
    from benchmark.models.pretrained_blip2 import EVA_FILE, QFORMER_FILE

    weights, tokenizer, _ = blip2_files
    bad = tmp_path / "bad"
    bad.mkdir()
    eva = torch.load(weights / EVA_FILE)
    torch.save({k: v for k, v in eva.items() if not k.startswith("blocks.0.")}, bad / EVA_FILE)
    (bad / QFORMER_FILE).symlink_to(weights / QFORMER_FILE)
    name = _reduced(monkeypatch)
    with pytest.raises(InputError, match=r"eva_vit_g\.pth is not a EVA ViT-g \(.*"
                                         r"keys missing \(first: blocks\.0\."):
        models.load(name, weights_dir=str(bad), tokenizer_dir=str(tokenizer))
    torch.save(eva, bad / EVA_FILE)
    (bad / QFORMER_FILE).unlink()
    q = torch.load(weights / QFORMER_FILE)
    q["model"].pop("itm_head.weight")
    torch.save(q, bad / QFORMER_FILE)
    with pytest.raises(InputError, match=r"blip2_pretrained.pth is not a BLIP-2 .*itm_head"):
        models.load(name, weights_dir=str(bad), tokenizer_dir=str(tokenizer))
    (bad / QFORMER_FILE).unlink()
    assert "blip2_pretrained.pth" in models.missing(name, weights_dir=str(bad),
                                                    tokenizer_dir=str(tokenizer))


@pytest.mark.slow
def test_full_size_blip2_from_lavis_files(tmp_path):
    """EVA ViT-g (39 blocks) and the 12-layer Q-Former at full size, random weights in LAVIS's
    two files, through the CLI on two images with Grad-CAM and rollout."""
    from tests.fixtures.real_layout import bert_vocab, lavis_blip2_checkpoints

    tokenizer = bert_vocab(tmp_path / "tokenizer" / "vocab.txt").parent
    lavis_blip2_checkpoints(tmp_path / "weights", tokenizer)
    out = tmp_path / "run"
    assert main(["--models", "blip2-itm", "--weights-dir", str(tmp_path / "weights"),
                 "--tokenizer-dir", str(tokenizer), "--methods", "cross_attn_gradcam,rollout",
                 "--metrics", "pointing_game,deletion_auc", "--limit", "2", "--out", str(out),
                 "--quiet", "--no-report"]) == 0
    rows = pd.read_csv(out / "results.csv")
    assert rows[rows.metric == "deletion_auc"].value.notna().all()
