"""``blip-itm-base`` / ``blip-itm-large`` from LAVIS checkpoint files on disk, loaded by the code
a researcher's run uses, on random weights written in the real layout (``tests/real_layout``):
the checkpoint in ``$TORCH_HOME/hub/checkpoints`` or ``--weights-dir``, the 30,522-word BERT
vocabulary in the Hugging Face cache or ``--tokenizer-dir``. The default run uses a reduced-depth
base (1 ViT block, 3 text layers, otherwise ViT-B/16 at 384 px and BERT base); the full sizes
run under ``-m slow``."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import methods
from benchmark.cli.main import dataset_metrics, main
from benchmark.core.errors import InputError
from tests.fixtures.cli_helpers import SMALL_METRIC_BUDGETS
from benchmark.models.pretrained import (CHECKPOINTS, _blip_loader, bert_tokenizer,
                                         build_blip_itm, load_checkpoint)
from tests.fixtures.real_layout import BERT_VOCAB_SIZE, bert_vocab, hf_cache_tokenizer, lavis_checkpoint

ROOT = Path(__file__).resolve().parents[2]
BASE_FILE = CHECKPOINTS["blip-itm-base"][1]
REDUCED = {"vit_depth": 1, "text_layers": 3}
#: every method but the ground-truth ones that need the synthetic scenes' re-rendering
METHODS = [m for m in methods.available() if m != "counterfactual_oracle"]
CHEAP = ["--steps", "2", "--method-option", "integrated_gradients.n_steps=4",
         "--method-option", "integrated_gradients.max_steps=4", "--quiet", "--no-report"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A reduced-depth base checkpoint under base's file name, and a tokenizer folder."""
    root = tmp_path_factory.mktemp("pretrained")
    tokenizer = bert_vocab(root / "tokenizer" / "vocab.txt").parent
    state = lavis_checkpoint(root / "weights" / BASE_FILE, "base", tokenizer, **REDUCED)
    return root, tokenizer, state


def test_the_generated_vocabulary_is_bert_base_uncased_sized_with_its_special_ids(files):
    tok = bert_tokenizer(files[1])
    assert len(tok) == BERT_VOCAB_SIZE + 2  # with BLIP's [DEC] and [ENC]
    assert tok.convert_tokens_to_ids(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) == \
        [0, 100, 101, 102, 103]
    assert tok.enc_token_id == tok.convert_tokens_to_ids("[ENC]")


def test_the_loader_reads_every_weight_of_the_checkpoint(files):
    root, tokenizer, state = files
    model = _blip_loader("reduced", "base", BASE_FILE, **REDUCED)(
        weights_dir=str(root / "weights"), tokenizer_dir=str(tokenizer))
    loaded = model.module.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    # and the architecture's own initialisation differs, so equality means loaded
    init = build_blip_itm("base", bert_tokenizer(tokenizer), **REDUCED).state_dict()
    assert not torch.equal(init["itm_head.weight"], state["itm_head.weight"])
    assert model.grid == (24, 24) and model.image_size == 384 and model.default_block == 1


def test_the_fused_base_loads_through_the_same_checked_path(files, tmp_path):
    from benchmark.models.fused import FusedBlipAdapter
    from benchmark.models.pretrained import DIFNET_BASE, DIFNET_FUSION

    state = lavis_checkpoint(tmp_path / DIFNET_BASE, "base", files[1], fusion=DIFNET_FUSION,
                             **REDUCED)
    model = _blip_loader("fused", "base", DIFNET_BASE, fusion=DIFNET_FUSION, **REDUCED)(
        weights_dir=str(tmp_path), tokenizer_dir=str(files[1]))
    assert isinstance(model, FusedBlipAdapter) and model.side_input_classes("segmentation") == 133
    loaded = model.module.state_dict()
    assert set(loaded) == set(state) and all(torch.equal(loaded[k], state[k]) for k in state)
    with pytest.raises(InputError, match="keys missing"):  # a plain BLIP checkpoint is refused
        _blip_loader("fused", "base", BASE_FILE, fusion=DIFNET_FUSION, **REDUCED)(
            weights_dir=str(files[0] / "weights"), tokenizer_dir=str(files[1]))


@pytest.mark.parametrize("change,named", [
    (lambda s: s.pop("text_encoder.encoder.layer.2.output.dense.weight"), "keys missing"),
    (lambda s: s.update({"vqa_head.0.weight": torch.zeros(2, 2)}), "unexpected keys"),
    (lambda s: s.update({"itm_head.weight": torch.zeros(2, 7)}), "keys of another shape"),
])
def test_a_checkpoint_that_does_not_fit_is_refused_naming_its_keys(files, tmp_path, change,
                                                                   named):
    state = dict(files[2])
    change(state)
    path = tmp_path / "ckpt.pth"
    torch.save({"model": state}, path)
    model = build_blip_itm("base", bert_tokenizer(files[1]), **REDUCED)
    with pytest.raises(InputError, match=named) as e:
        load_checkpoint(model, path, "BLIP-ITM base")
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_lavis_retrieval_extras_and_a_missing_position_ids_buffer_are_accepted(files, tmp_path):
    state = {k: v for k, v in files[2].items() if not k.endswith("position_ids")}
    state["visual_encoder_m.blocks.0.attn.qkv.weight"] = torch.zeros(3)
    path = tmp_path / "ckpt.pth"
    torch.save(state, path)  # a bare state dict, as some fine-tuning scripts save
    model = build_blip_itm("base", bert_tokenizer(files[1]), **REDUCED)
    load_checkpoint(model, path, "BLIP-ITM base")
    assert torch.equal(model.itm_head.weight, files[2]["itm_head.weight"])


def test_a_checkpoint_of_another_depth_is_one_line_and_exit_2(files, tmp_path, capsys):
    root, tokenizer, _ = files
    code = main(["--models", "blip-itm-base", "--weights-dir", str(root / "weights"),
                 "--tokenizer-dir", str(tokenizer), "--limit", "2", "--methods", "center",
                 "--metrics", "pointing_game", "--out", str(tmp_path / "run"), "--quiet",
                 "--no-report"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "keys missing (first: text_encoder.encoder.layer.3." in err


def test_without_a_tokenizer_the_model_is_skipped_with_what_to_do(files, tmp_path, capsys):
    code = main(["--models", "blip-itm-base,blip-itm-tiny@init", "--weights-dir",
                 str(files[0] / "weights"), "--tokenizer-dir", str(tmp_path / "nothing"),
                 "--limit", "2", "--methods", "center", "--metrics", "pointing_game",
                 "--out", str(tmp_path / "run"), "--quiet", "--no-report"])
    err = capsys.readouterr().err
    assert code == 0
    assert "skipping blip-itm-base: BERT tokenizer not found offline" in err
    assert "--tokenizer-dir" in err


def test_preprocessing_is_lavis_blip_image_eval(files):
    from lavis.processors.blip_processors import BlipImageEvalProcessor
    from PIL import Image

    from benchmark.models.blip import blip_preprocessing

    image = np.random.default_rng(0).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    ours = blip_preprocessing(384)([image])[0]
    lavis = BlipImageEvalProcessor(image_size=384)(Image.fromarray(image))
    assert ours.shape == lavis.shape == (3, 384, 384)
    assert torch.allclose(ours, lavis, atol=1e-6)


def _run_in_a_fresh_process(env_home: Path, args, name: str, **arch) -> subprocess.CompletedProcess:
    """The CLI in a fresh interpreter whose caches are under ``env_home`` (the Hugging Face hub
    reads its cache location at import), with ``name`` registered as a variant of BLIP base."""
    register = (f"from benchmark.models.pretrained import register_blip_itm; "
                f"register_blip_itm({name!r}, 'base', {BASE_FILE!r}, **{arch!r})" if arch else "")
    code = f"import sys; {register}\nfrom benchmark.cli.main import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "TORCH_HOME": str(env_home / "torch"), "HF_HOME": str(env_home / "hf"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)


def _check_run(out: Path, name: str) -> pd.DataFrame:
    rows = pd.read_csv(out / "results.csv")
    assert set(rows.method) == set(METHODS)
    assert set(rows.model) == {name}
    vqa = rows[rows.metric.str.startswith("vqa_")]
    assert len(vqa) and vqa.value.isna().all()  # no VQA head: not applicable, with a note
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"][name]["images_per_forward"] >= 1
    return rows


def test_reduced_base_runs_every_method_from_lavis_and_hugging_face_caches(files, tmp_path):
    """The researcher's default locations: the checkpoint in $TORCH_HOME/hub/checkpoints, the
    tokenizer in the Hugging Face cache; two images, every method."""
    root, _, _ = files
    (tmp_path / "torch" / "hub" / "checkpoints").mkdir(parents=True)
    os.symlink(root / "weights" / BASE_FILE, tmp_path / "torch" / "hub" / "checkpoints" / BASE_FILE)
    hf_cache_tokenizer(tmp_path / "hf")
    out = tmp_path / "run"
    r = _run_in_a_fresh_process(tmp_path, [
        "--models", "blip-itm-base-reduced", "--limit", "2", "--methods", ",".join(METHODS),
        "--metrics", "pointing_game,relevance_rank,deletion_auc,insertion_auc,vqa_keep_auc",
        "--out", str(out), *CHEAP], "blip-itm-base-reduced", **REDUCED)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = _check_run(out, "blip-itm-base-reduced")
    gradcam = rows[(rows.method == "cross_attn_gradcam") & (rows.metric == "deletion_auc")]
    assert gradcam.value.notna().all() and len(gradcam) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["blip-itm-base", "blip-itm-large"])
def test_full_size_model_runs_every_method_and_metric(name, tmp_path):
    """The registered model at full size through the CLI on two images: every method, every
    metric but the randomisation cascades (on a 26- or 50-stage model they cost hours per
    method with IG; ``tools/pretrained_cost.py`` times one on Grad-CAM)."""
    vit_type, filename = CHECKPOINTS[name]
    tokenizer = bert_vocab(tmp_path / "tokenizer" / "vocab.txt").parent
    lavis_checkpoint(tmp_path / "weights" / filename, vit_type, tokenizer)
    out = tmp_path / "run"
    every = [m for m in dataset_metrics("all", "synthetic")
             if m not in ("sanity_mprt", "smprt", "emprt")]
    assert main(["--models", name, "--weights-dir", str(tmp_path / "weights"),
                 "--tokenizer-dir", str(tokenizer), "--limit", "2", "--methods",
                 ",".join(METHODS), "--metrics", ",".join(every), "--sanity-samples", "2",
                 "--out", str(out), "--method-option", "integrated_gradients.max_steps=32",
                 *SMALL_METRIC_BUDGETS,
                 "--quiet", "--no-report"]) == 0
    _check_run(out, name)
