"""What every method's metric calls share is computed once per model and batch, and changes no
score (:mod:`benchmark.engine.shared`)."""
import numpy as np
import pytest
import torch

import methods
import metrics
from benchmark import models
from benchmark.engine.batch_inputs import fed, images
from benchmark.engine.config import RunConfig
from benchmark.engine.passes import PassCounter
from datasets.segmentation_stream import absent_side_inputs
from benchmark.engine.shared import shared_inputs
from datasets.loader_synthetic import SyntheticDataset

STEPS = 8


@pytest.fixture(scope="module")
def batch():
    model = models.load("difnet-itm-tiny")  # side inputs: the segmentation stream is perturbed
    data = SyntheticDataset(split="test")
    recs = [data[i] for i in range(12)]
    cfg = RunConfig(models=[], methods=[], metrics=[], insertion_start="blur")
    view = fed(model, recs, recs, cfg)
    return view, images(recs, model), recs, cfg


@pytest.mark.parametrize("name", ["deletion_auc", "insertion_auc", "vqa_keep_auc",
                                  "vqa_pnp_sample"])
def test_a_metric_scores_the_same_with_the_shared_inputs(batch, name):
    view, x, recs, cfg = batch
    fn = metrics.get(name)
    fn = fn.with_options(steps=STEPS) if "steps" in fn.config else fn
    assert fn.shared
    maps = methods.get("cross_attn_gradcam")(view, x, [r.question for r in recs])
    # a subset of the batch, as the run plan or a non-matching question leaves
    sel = torch.tensor([0, 2, 3, 5, 8, 11])
    sub = [recs[i] for i in sel]
    kwargs = dict(seed=0, scorer=lambda p, a: float(p in a),
                  absent=absent_side_inputs(view, cfg.segmentation, True))
    alone = fn(view.select(sel), x[sel], [r.question for r in sub], maps[sel], sub, **kwargs)
    shared = shared_inputs(fn.shared, view, x, recs, cfg, sel)
    assert set(shared) == set(fn.shared)
    given = fn(view.select(sel), x[sel], [r.question for r in sub], maps[sel], sub, **kwargs,
               **shared)
    np.testing.assert_allclose(given.values, alone.values, atol=1e-5)
    if alone.curves is not None:
        np.testing.assert_allclose(given.curves, alone.curves, atol=1e-5)


def test_a_run_computes_the_curve_ends_once_per_model_and_question(tmp_path):
    from benchmark.cli.main import main

    argv = ["--models", "blip-itm-tiny", "--methods", "cross_attn_gradcam,rollout,random",
            "--metrics", "deletion_auc,insertion_auc", "--limit", "8", "--steps", str(STEPS),
            "--quiet", "--no-report", "--out", str(tmp_path)]
    with PassCounter() as counter:
        assert main(argv) == 0
    data = SyntheticDataset(split="test")
    matched = sum(data[i].extra.get("itm_label", 1) != 0 for i in range(8))
    assert counter.forward["shared/ends"] == 3 * matched
    for method in ("cross_attn_gradcam", "rollout", "random"):
        for metric in ("deletion_auc", "insertion_auc"):
            # only the curve's S − 1 inner points are the method's own
            assert counter.forward[f"{method}/{metric}"] == (STEPS - 1) * matched
