"""stability.csv: Kendall's τ between the method rankings of training-seed replicates, and each
method's spread across them."""
import pytest
from scipy.stats import kendalltau

from benchmark.engine.stability import replicate_groups, stability


def _info(seed, depth=3, recipe="plain"):
    return {"config": {"vit_depth": depth}, "train_config": {"seed": seed, "lr": 1,
                                                             "recipe": recipe}}


MODELS = {"a": _info(0), "a-s1": _info(1), "a-s2": _info(2), "b": _info(0, depth=1),
          "c": _info(0, recipe="supervised"), "a@init": {"config": {}, "untrained": True}}


def _row(model, method, metric, mean):
    return {"model": model, "method": method, "metric": metric, "region": "target",
            "subset": "all", "question_type": "all", "mean": mean}


def test_only_models_that_differ_in_their_seed_form_a_group():
    assert replicate_groups(MODELS) == {"a": ["a", "a-s1", "a-s2"]}


def test_rankings_agreement_and_spread_per_metric():
    means = {"a": (0.9, 0.5, 0.1), "a-s1": (0.8, 0.6, 0.2), "a-s2": (0.4, 0.7, 0.3)}
    summary = [_row(s, m, "deletion_auc", v) for s, vals in means.items()
               for m, v in zip(("x", "y", "z"), vals)]
    summary += [_row("a", "random", "deletion_auc", 0.5)]  # a baseline: not ranked
    rows = stability(summary, MODELS, {"x", "y", "z"}, {"deletion_auc": False})
    ranking, *per_method = rows
    # lower is better: a ranks z, y, x; a-s1 z, y, x; a-s2 z, x, y
    taus = [kendalltau([-v for v in means[p]], [-v for v in means[q]]).statistic
            for p, q in (("a", "a-s1"), ("a", "a-s2"), ("a-s1", "a-s2"))]
    assert ranking["mean"] == pytest.approx(sum(taus) / 3) and ranking["min"] == min(taus)
    assert ranking["top_agrees"] == 1  # z first in every seed
    x = next(r for r in per_method if r["row"] == "x")
    assert (x["mean"], x["min"], x["max"]) == pytest.approx((0.7, 0.4, 0.9))
    assert {r["row"] for r in per_method} == {"x", "y", "z"}
