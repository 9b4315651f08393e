"""PNP-VQA's downstream (``pnp_vqa_accuracy``) with LAVIS's captioner and answerer, on random
weights written in the real layout: a reduced-depth BLIP large caption checkpoint (LAVIS's
``blip_caption_large_coco.yaml``, 1 ViT block, 1 decoder layer) and a reduced-depth UnifiedQA-v2
T5 base folder (LAVIS's ``unifiedqav2_base_config.json`` with 1 encoder and 1 decoder layer,
``save_pretrained``, a sentencepiece tokenizer trained on the synthetic questions)."""
import dataclasses
import json
import shutil

import pandas as pd
import pytest
import torch

import methods
from benchmark import models
from benchmark.cli.main import main
from benchmark.models.pnp_pipelines import PIPELINES, PipelineSpec, load_pipeline
from benchmark.models.pnp_vqa_pipeline import CaptionSettings, regrid_mass, sample_seed
from benchmark.models.pretrained import bert_tokenizer, build_blip_itm
from tests.fixtures.real_layout import bert_vocab, lavis_caption_checkpoint, unifiedqa_folder

CAPTION_FILE = "model_large_caption_coco_train2014.pth"
REPO = "allenai/unifiedqa-v2-t5-base-1363200"
REDUCED = PipelineSpec(CAPTION_FILE, REPO, vit_depth=1, text_layers=1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("pnp")
    tokenizer = bert_vocab(root / "tokenizer" / "vocab.txt").parent
    lavis_caption_checkpoint(root / "weights" / CAPTION_FILE, tokenizer, vit_depth=1,
                             text_layers=1)
    unifiedqa_folder(root / "weights" / REPO.split("/")[1], layers=1)
    return root / "weights", tokenizer


@pytest.fixture()
def reduced(monkeypatch):
    monkeypatch.setitem(PIPELINES, "pnp-vqa-reduced", REDUCED)
    return "pnp-vqa-reduced"


@pytest.fixture(scope="module")
def pipe(files):
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PIPELINES, "pnp-vqa-reduced", REDUCED)
        return load_pipeline("pnp-vqa-reduced", str(files[0]), str(files[1]))


def test_our_route_reproduces_lavis_predict_answers_with_cross_attn_gradcam(files, pipe):
    """PNP-VQA's own Grad-CAM is cross_attn_gradcam: fed to our route, it gives LAVIS's
    captions and answer for the same seed (one question per call, as our route runs)."""
    from lavis.models.pnp_vqa_models.pnp_vqa import PNPVQA

    itm = build_blip_itm("base", bert_tokenizer(files[1]), vit_depth=1, text_layers=3, seed=3)
    # LAVIS's PNP-VQA strips the "?" before its ITM pass, as the pretrained loaders do
    adapter = models.wrap(itm, strip_question_mark=True)
    image = torch.randn(1, 3, 384, 384, generator=torch.Generator().manual_seed(0))
    question, sid = "what colour is the square?", "q1"
    seed = sample_seed(0, sid)
    maps = methods.get("cross_attn_gradcam")(adapter, image, [question])
    probs = pipe.patch_probabilities(maps, 20)
    ours = pipe.captions(image, probs, num_patches=20, num_captions=5, seed=seed)
    answer = pipe.answer(question, ours)

    pnp = PNPVQA(itm, pipe.captioner, pipe.answerer)
    torch.manual_seed(seed)
    ref_answers, ref_captions, ref_cams = pnp.predict_answers(
        {"image": image, "text_input": [question]}, num_captions=5, num_patches=20,
        block_num=adapter.default_block)
    scale = ref_cams.abs().max()
    assert float(((probs - ref_cams) / scale).abs().max()) <= 1e-6
    assert ours == ref_captions[0] and len(ours) == 5
    assert answer == ref_answers[0]


def test_patch_probabilities_keep_each_patch_share_and_stay_drawable(pipe):
    assert pipe.grid == (24, 24)
    maps = torch.zeros(2, 12, 12)
    maps[0, 3, 4] = 2.0
    maps[0, 5, 5] = -1.0  # negative relevance is never drawn
    maps[1] = torch.rand(12, 12)
    p = pipe.patch_probabilities(maps, 20)
    assert p.shape == (2, 576)
    grid = p[1].view(24, 24)  # each patch's mass spread over the four cells it covers
    for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)):
        assert torch.allclose(grid[i::2, j::2], maps[1] / 4)
    # fewer positive patches than draws: the rest spread uniformly over the others
    assert (p[0] > 0).all() and p[0].view(24, 24)[6, 8] == 0.5
    assert float(p[0].view(24, 24)[10, 10]) == pytest.approx(1e-6 * 2.0)  # of the sum
    torch.multinomial(p, 20)  # LAVIS's draw would raise on the all-but-one-zero map


@pytest.mark.parametrize("size, grid", [(24, 12), (16, 24), (24, 16), (12, 12)])
def test_a_map_on_another_grid_keeps_every_patchs_share(size, grid):
    """A BLIP base map (24 × 24) read by a 12 × 12 captioner, and non-integer ratios: each of
    the map's patches keeps its mass, where nearest-neighbour drops or duplicates patches."""
    one_hot = torch.eye(size * size, dtype=torch.float64).view(-1, size, size)
    moved = regrid_mass(one_hot, (grid, grid))
    assert moved.shape == (size * size, grid, grid)
    assert torch.allclose(moved.flatten(1).sum(1), torch.ones(size * size, dtype=torch.float64))
    maps = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))
    out = regrid_mass(maps, (grid, grid))
    assert torch.allclose(out.sum((1, 2)), maps.sum((1, 2)))
    if size == 2 * grid:  # halving: each cell is the sum of the 2 × 2 block it covers
        assert torch.allclose(out, maps.view(3, grid, 2, grid, 2).sum((2, 4)))


def test_a_captioner_that_repeats_itself_stops_after_max_rounds(pipe):
    pipe = dataclasses.replace(pipe, settings=CaptionSettings(top_k=1, max_rounds=3))
    image = torch.randn(1, 3, 384, 384)
    caps = pipe.captions(image, torch.ones(1, 576), num_patches=576, num_captions=4, seed=0)
    assert len(caps) == 1  # all 12 drawn captions are the same greedy caption


def test_captions_are_seeded_per_question(pipe):
    image = torch.randn(1, 3, 384, 384, generator=torch.Generator().manual_seed(2))
    probs = torch.rand(1, 576, generator=torch.Generator().manual_seed(3))
    a, b, c = (pipe.captions(image, probs, 20, 3, seed=s) for s in (7, 7, 8))
    assert a == b and a != c and len(a) == 3


def test_pnp_vqa_accuracy_through_the_cli(files, reduced, tmp_path):
    weights, tokenizer = files
    assert main(["--models", "blip-itm-tiny", "--methods", "cross_attn_gradcam,random",
                 "--metrics", "pnp_vqa_accuracy", "--pnp-vqa", reduced, "--pnp-captions", "2",
                 "--weights-dir", str(weights), "--tokenizer-dir", str(tokenizer), "--limit",
                 "2", "--out", str(tmp_path / "a"), "--quiet", "--no-report"]) == 0
    rows = pd.read_csv(tmp_path / "a" / "results.csv")
    rows = rows[rows.metric == "pnp_vqa_accuracy"]
    assert len(rows) == 4 and rows.value.notna().all() and rows.value.between(0, 1).all()
    curves = pd.read_csv(tmp_path / "a" / "curves.csv")
    assert set(curves[curves.metric == "pnp_vqa_accuracy"].x.round(4)) == \
        {round(k / 576, 4) for k in (5, 10, 20, 40)}


def test_a_run_folder_refuses_a_pipeline_whose_weights_changed(files, reduced, tmp_path, capsys):
    weights, tokenizer = files
    here = tmp_path / "weights"
    shutil.copytree(weights, here)

    def run(w):
        return main(["--models", "blip-itm-tiny", "--methods", "random", "--metrics",
                     "pnp_vqa_accuracy", "--pnp-vqa", reduced, "--pnp-captions", "1",
                     "--weights-dir", str(w), "--tokenizer-dir", str(tokenizer), "--limit", "1",
                     "--out", str(tmp_path / "run"), "--quiet", "--no-report"])

    assert run(here) == 0
    sha = json.loads((tmp_path / "run" / "manifest.json").read_text())["pnp_vqa"]["sha256"]
    assert len(sha) == 64
    moved = tmp_path / "elsewhere"
    here.rename(moved)  # the same files in another folder: the run folder resumes
    assert run(moved) == 0
    lavis_caption_checkpoint(moved / CAPTION_FILE, tokenizer, vit_depth=1, text_layers=1, seed=2)
    capsys.readouterr()
    assert run(moved) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "another PNP-VQA pipeline" in err and sha in err
    assert (tmp_path / "run" / "results.csv").exists()


def test_without_the_pipeline_on_disk_the_rows_say_which_file(tmp_path):
    assert main(["--models", "blip-itm-tiny", "--methods", "center", "--metrics",
                 "pnp_vqa_accuracy", "--pnp-vqa", "pnp-vqa-base", "--weights-dir",
                 str(tmp_path / "none"), "--limit", "1", "--out", str(tmp_path / "run"),
                 "--quiet", "--no-report"]) == 0
    rows = pd.read_csv(tmp_path / "run" / "results.csv")
    note = rows[rows.metric == "pnp_vqa_accuracy"].note.iloc[0]
    assert note.startswith("not applicable: PNP-VQA captioner not on disk")
    assert CAPTION_FILE in note


def test_an_unknown_pipeline_is_a_usage_error(tmp_path, capsys):
    assert main(["--models", "blip-itm-tiny", "--pnp-vqa", "nope", "--out",
                 str(tmp_path / "r")]) == 2
    assert "unknown --pnp-vqa 'nope'" in capsys.readouterr().err
