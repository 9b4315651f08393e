"""The numbers mean something: on the synthetic test split real methods beat the baselines."""
import pytest

from benchmark.models import CHECKPOINT_DIR
from benchmark.outputs import summarise
from benchmark.runner import RunConfig, run

TRAINED = [n for n in ("blip-itm-tiny", "difnet-itm-tiny") if (CHECKPOINT_DIR / f"{n}.json").exists()]


def _summary(models, methods, metrics, limit):
    cfg = RunConfig(models=models, methods=methods, metrics=metrics, limit=limit, batch_size=32)
    result = run(cfg, progress=False)
    rows = summarise(result.rows, seed=0, higher_is_better=result.higher_is_better)
    return {(r["model"], r["method"], r["metric"], r["region"]): r for r in rows
            if r["subset"] == "all" and r["question_type"] == "all"}


@pytest.mark.parametrize("model", TRAINED)
def test_pointing_game_on_500_target_questions(model):
    s = _summary([model], ["cross_attn_gradcam", "random"], ["pointing_game"], limit=560)
    grad = s[(model, "cross_attn_gradcam", "pointing_game", "target")]
    rand = s[(model, "random", "pointing_game", "target")]
    assert grad["n"] >= 500
    if model == "blip-itm-tiny":
        assert grad["mean"] >= 0.70, grad
    assert rand["mean"] <= 0.35, rand
    assert grad["ci_low"] > rand["ci_high"]


@pytest.mark.parametrize("model", TRAINED)
def test_perturbation_and_downstream_beat_random(model):
    s = _summary([model], ["cross_attn_gradcam", "random", "oracle"],
                 ["deletion_auc", "insertion_auc", "vqa_keep_auc"], limit=280)
    g = lambda meth, met: s[(model, meth, met, "")]  # noqa: E731
    assert g("cross_attn_gradcam", "insertion_auc")["ci_low"] > g("random", "insertion_auc")["ci_high"]
    assert g("cross_attn_gradcam", "deletion_auc")["ci_high"] < g("random", "deletion_auc")["ci_low"]
    assert g("cross_attn_gradcam", "vqa_keep_auc")["ci_low"] > g("random", "vqa_keep_auc")["ci_high"]
    assert g("oracle", "vqa_keep_auc")["ci_low"] > g("random", "vqa_keep_auc")["ci_high"]
