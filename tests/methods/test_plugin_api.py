"""The plugin API: CONTRIBUTING.md's method, metric and model files are the real files, and
outside packages register methods through the ``vqa_xai_bench.methods`` entry point group."""
import csv
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import methods
from tests.fixtures.plugin_files import PLUGIN_MODEL, write_model_plugin

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "benchmark" / "models" / "checkpoints" / "blip-itm-tiny.json"
QUESTIONS = ["what colour is the square?", "how many circles are there?"]


def contributing_blocks() -> dict:
    """CONTRIBUTING.md's python blocks, by the file its section header names."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    return dict(re.findall(r"^## [^\n]*`([^`]+\.py)`\n.*?^```python\n(.*?)^```$", text, re.S | re.M))


def test_contributing_shows_the_three_extension_files_verbatim():
    blocks = contributing_blocks()
    assert sorted(blocks) == ["benchmark/models/hf_blip.py", "methods/gradient_x_input.py",
                              "metrics/relevance.py"]
    for path, code in blocks.items():
        assert code == (ROOT / path).read_text(), f"CONTRIBUTING.md's {path} differs from the file"


def test_the_method_example_is_registered():
    assert "gradient_x_input" in methods.available()
    assert methods.get("gradient_x_input").name == "gradient_x_input"


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))


def test_gradient_x_input_equals_a_hand_computation(untrained_tiny, images):
    model = untrained_tiny
    with torch.no_grad():  # the method must turn gradients on itself
        ours = methods.get("gradient_x_input")(model, images, QUESTIONS)
    assert ours.shape == (2, 12, 12) and ours.dtype == torch.float32

    x = images.clone().requires_grad_(True)
    tokens = model.module.visual_encoder.forward_features(x)
    text = model.tokenize(QUESTIONS)
    ones = torch.ones(tokens.shape[:2], dtype=torch.long)
    out = model.module.text_encoder(text.input_ids, attention_mask=text.attention_mask,
                                   encoder_hidden_states=tokens, encoder_attention_mask=ones,
                                   return_dict=True)
    (grad,) = torch.autograd.grad(model.module.itm_head(out.last_hidden_state[:, 0])[:, 1].sum(), x)
    per_pixel = (grad * images).sum(1)  # (B, 96, 96)
    ref = per_pixel.reshape(2, 12, 8, 12, 8).sum(dim=(2, 4))
    scale = float(ref.abs().max())
    assert scale > 0
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-5 * scale)


# ------------------------------------------------------------------ entry points

PLUGIN_SOURCE = '''
"""A method from outside the repository (test distribution)."""
import torch.nn.functional as F

import methods
from methods.base import Attribution


@methods.register("demo_plugin")
class DemoPlugin(Attribution):
    """Mean absolute pixel value per patch."""

    def attribute(self, model, images, questions, **_):
        return F.adaptive_avg_pool2d(images.abs().mean(1, keepdim=True), model.grid)[:, 0]
'''


@pytest.fixture(scope="module")
def distribution(tmp_path_factory):
    """An installed-looking distribution: a module plus its ``.dist-info`` (no pip needed)."""
    root = tmp_path_factory.mktemp("site")
    (root / "xb_plugin_demo.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    info = root / "xb_plugin_demo-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xb-plugin-demo\nVersion: 0.0.0\n")
    # the entry point names the module: importing it runs its @methods.register
    (info / "entry_points.txt").write_text(
        "[vqa_xai_bench.methods]\ndemo_plugin = xb_plugin_demo\n")
    write_model_plugin(root)  # an untrained model, so the run is also tested without a checkpoint
    return root


def _cli(args, site: Path):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_external_distribution_is_listed(distribution):
    p = _cli(["--list"], distribution)
    assert p.returncode == 0, p.stderr
    listed = p.stdout.split("methods:")[1].split("metrics:")[0].split()
    assert "demo_plugin" in listed and "gradient_x_input" in listed


@pytest.mark.parametrize("model", ["blip-itm-tiny", PLUGIN_MODEL])
def test_external_method_runs(distribution, tmp_path, model):
    if model == "blip-itm-tiny" and not CHECKPOINT.exists():
        pytest.skip(f"{CHECKPOINT} not shipped yet")
    out = tmp_path / "run"
    p = _cli(["--methods", "demo_plugin", "--models", model, "--limit", 2, "--metrics",
              "pointing_game", "--quiet", "--no-report", "--out", out], distribution)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "results.csv").open()))
    demo = [r for r in rows if r["method"] == "demo_plugin"]
    assert demo and len({r["sample_id"] for r in demo}) == 2
    assert all(r["value"] != "" for r in demo if r.get("region", "target") == "target")
