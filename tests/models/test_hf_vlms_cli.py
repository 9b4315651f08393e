"""The main command on the Hugging Face VLMs that explain their answer: every method and metric
on tiny random ``hf-llava`` and ``hf-blip-vqa`` folders in one run, nothing outside the adapter
files edited."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import methods
from tests.fixtures.cli_helpers import SMALL_METRIC_BUDGETS
from tests.fixtures.hf_vlm import blip_vqa_folder, llava_folder

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf-vlms")
    specs = {"llava": f"hf-llava:{llava_folder(root / 'llava')}",
             "blip_vqa": f"hf-blip-vqa:{blip_vqa_folder(root / 'blip-vqa')}"}
    out = root / "run"
    r = subprocess.run([sys.executable, "-m", "benchmark", "--models", ",".join(specs.values()),
                        "--methods", "all", "--metrics", "all", "--limit", "2",
                        "--batch-size", "2", "--sanity-samples", "2", "--steps", "4",
                        "--vqa-mode", "pixels",
                        # two-token answers: the random models never end theirs
                        "--model-option", "hf-llava.max_new_tokens=2",
                        "--model-option", "hf-blip-vqa.max_new_tokens=2",
                        "--method-option", "integrated_gradients.max_steps=256",
                        *SMALL_METRIC_BUDGETS, "--out", str(out), "--quiet", "--no-report"],
                       cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = pd.read_csv(out / "results.csv", keep_default_na=False, na_values=[""])
    return specs, out, rows


def test_every_applicable_method_maps_every_sample(run):
    specs, _, rows = run
    pointing = rows[(rows.metric == "pointing_game") & (rows.region == "target")]
    for key, not_applicable in (("llava", {"lrp"}), ("blip_vqa", {"chefer_relevance"})):
        ran = pointing[pointing.model == specs[key]].groupby("method").value.count()
        assert set(ran[ran == 2].index) == set(methods.available()) - not_applicable, key
    assert rows[(rows.model == specs["llava"]) & (rows.method == "lrp")].note.str.contains(
        "RMSNorm").all()


def test_deletion_and_answer_accuracy_read_the_generated_answer(run):
    """Answer accuracy with only the top patches shown (``--vqa-mode pixels``: the rest painted
    over, nothing leaks) scores the answer each model writes on the painted image."""
    specs, _, rows = run
    for spec in specs.values():
        mine = rows[rows.model == spec]
        assert mine[mine.metric == "deletion_auc"].value.notna().any()
        keep = mine[mine.metric == "vqa_keep_auc"]
        keep = keep[~keep.note.fillna("").str.startswith("not applicable")]
        assert len(keep) >= 20 and keep.value.between(0, 1).all()


def test_the_manifest_records_the_folders_and_the_sanity_stages_are_the_decoders(run):
    specs, out, _ = run
    manifest = json.loads((out / "manifest.json").read_text())
    for spec in specs.values():
        assert manifest["models"][spec]["source"] == str(Path(spec.split(":", 1)[1]).resolve())
    sanity = pd.read_csv(out / "sanity.csv")
    stages = sanity.groupby("model").stage.apply(set)
    assert any(s.startswith("decoder_layer_") for s in stages[specs["llava"]])
    assert "answer_head" in stages[specs["blip_vqa"]]
