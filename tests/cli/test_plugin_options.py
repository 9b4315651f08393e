"""A metric and a dataset from outside the repository, each one file declaring an option, set
from the command line: the values reach the plugins, the manifest records them, and a bad one
is one line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.fixtures.plugin_files import write_distribution

ROOT = Path(__file__).resolve().parents[2]

METRIC = '''
"""The share of the map's top pixels that fall on the region."""
import numpy as np

from benchmark.core.maps import to_image_size
from benchmark.core.options import Option
from metrics import register
from metrics.base import LocalisationMetric


@register("top_share_on_region")
class TopShareOnRegion(LocalisationMetric):
    """Of the map's ``top`` highest pixels (a share of the image), the share on the mask."""

    top = Option("top", float, 0.1, "share of the image's pixels read")

    def __call__(self, heatmap, mask, tolerance=None) -> float:
        heat = to_image_size(heatmap, mask.shape).ravel()
        k = max(1, int(round(self.top * heat.size)))
        return float(mask.ravel()[np.argsort(-heat, kind="stable")[:k]].mean())
'''

DATASET = '''
"""The synthetic test questions, a given number of them."""
from benchmark.core.options import Option
from datasets import register
from datasets.loader_synthetic import SyntheticDataset


@register("few_synthetic")
class FewSynthetic(SyntheticDataset):
    """The first ``questions`` synthetic questions of a split."""

    name = "few_synthetic"
    options = (Option("questions", int, 5, "how many questions"),)

    def __init__(self, split="test", seed=0, questions=5, **_):
        super().__init__(split=split, seed=seed, size=questions)
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    return write_distribution(
        tmp_path_factory.mktemp("options-plugin"), "xb-options-plugin",
        {"xb_top_share": METRIC, "xb_few": DATASET},
        {"vqa_xai_bench.metrics": {"top_share_on_region": "xb_top_share"},
         "vqa_xai_bench.datasets": {"few_synthetic": "xb_few"}})


def _cli(args, plugin_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(plugin_path),
                                                                             str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


RUN = ["--models", "blip-itm-tiny-plain", "--methods", "random", "--metrics",
       "top_share_on_region", "--dataset", "few_synthetic", "--quiet", "--no-report"]


def test_options_declared_in_plugin_files_reach_the_plugins_and_the_manifest(plugin_path,
                                                                              tmp_path):
    out = tmp_path / "run"
    r = _cli(RUN + ["--dataset-option", "questions=3", "--metric-option",
                    "top_share_on_region.top=1.0", "--out", out], plugin_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = pd.read_csv(out / "results.csv")
    rows = rows[(rows.metric == "top_share_on_region") & rows.value.notna()]
    assert rows.sample_id.nunique() == 3  # the dataset's option
    # every pixel read (top=1.0): the value is the region's share of the image, whatever the map
    from datasets.loader_synthetic import SyntheticDataset

    data = SyntheticDataset(split="test", size=3)
    masks = {data[i].sample_id: data[i] for i in range(3)}
    region = {"target": "target_mask", "distractor": "distractor_mask"}
    for r_ in rows[rows.region.isin(region)].itertuples():
        want = float(getattr(masks[r_.sample_id], region[r_.region]).mean())
        assert np.isclose(r_.value, want, rtol=1e-5), (r_.sample_id, r_.region)
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["metric_options"] == {"top_share_on_region": {"top": 1.0}}
    assert config["dataset_options"] == {"questions": 3}


@pytest.mark.parametrize("flag,value,says", [
    ("--metric-option", "top_share_on_region.tops=0.5", "its options: top"),
    ("--metric-option", "top_share_on_region.top=half", "expects float"),
    ("--dataset-option", "size=3", "dataset has no option 'size'; its options: questions"),
])
def test_a_bad_option_is_one_line_naming_the_valid_ones(plugin_path, tmp_path, flag, value, says):
    r = _cli(RUN + [flag, value, "--out", tmp_path / "bad"], plugin_path)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and says in lines[0], r.stderr[-2000:]


def test_shorthand_flags_set_their_option_on_every_metric_of_the_run_that_declares_it():
    import metrics
    from benchmark.cli.args import run_parser, with_shorthands

    args = run_parser().parse_args(["--steps", "4", "--vqa-grid", "linear", "--pnp-captions",
                                    "3", "--metric-option", "insertion_auc.steps=8"])
    names = ["deletion_auc", "insertion_auc", "vqa_keep_auc", "pointing_game"]
    options = with_shorthands(args, names, metrics.parse_options(args.metric_option))
    # the explicit --metric-option wins; metrics without the option (and pnp_vqa_accuracy, not
    # in the run) get nothing
    assert options == {"insertion_auc": {"steps": 8}, "deletion_auc": {"steps": 4},
                       "vqa_keep_auc": {"grid": "linear"}}
    bound = [metrics.get(n).with_options(**options.get(n, {})) for n in names[:3]]
    assert (bound[0].steps, bound[1].steps, bound[2].grid) == (4, 8, "linear")
    plain = with_shorthands(run_parser().parse_args([]), names, {})
    assert plain == {} and metrics.get("deletion_auc").steps == 16
