"""agreement.csv: Kendall's τ between two metrics' method rankings, each in its direction."""
import pytest
from scipy.stats import kendalltau

from benchmark.engine.agreement import agreement
from reports.matrices import agreement_matrices

HIGHER = {"deletion_auc": False, "insertion_auc": True, "road_lerf": True, "ig_steps": False}
REAL = {"x", "y", "z", "w"}


def _row(method, metric, mean, model="m", region="target"):
    return {"model": model, "method": method, "metric": metric, "region": region,
            "subset": "all", "question_type": "all", "mean": mean}


def test_rankings_compared_in_each_metrics_direction_on_real_methods_only():
    deletion = {"x": 0.1, "y": 0.2, "z": 0.3, "w": 0.4, "random": 0.0}  # x best (lower)
    insertion = {"x": 0.9, "y": 0.8, "z": 0.7, "w": 0.6, "random": 1.0}  # x best (higher)
    road = {"x": 0.5, "y": 0.9, "z": 0.7, "w": 0.6}
    summary = [_row(m, "deletion_auc", v) for m, v in deletion.items()]
    summary += [_row(m, "insertion_auc", v) for m, v in insertion.items()]
    summary += [_row(m, "road_lerf", v, region="") for m, v in road.items()]
    summary += [_row(m, "ig_steps", v) for m, v in deletion.items()]  # a diagnostic
    summary += [_row("x", "insertion_auc", 0.0, region="control")]
    rows = agreement(summary, REAL, HIGHER, {"deletion_auc", "insertion_auc", "road_lerf"})
    by = {(r["metric_a"], r["metric_b"]): r for r in rows}
    assert set(by) == {("deletion_auc", "insertion_auc"), ("deletion_auc", "road_lerf"),
                       ("insertion_auc", "road_lerf")}
    assert by[("deletion_auc", "insertion_auc")]["tau"] == pytest.approx(1.0)
    assert by[("deletion_auc", "insertion_auc")]["methods"] == 4  # random left out
    expected = kendalltau([-0.1, -0.2, -0.3, -0.4], [0.5, 0.9, 0.7, 0.6]).statistic
    assert by[("deletion_auc", "road_lerf")]["tau"] == pytest.approx(expected)
    (table,) = agreement_matrices([{k: str(v) for k, v in r.items()} for r in rows])
    assert table["metrics"] == ["deletion_auc", "insertion_auc", "road_lerf"]
    assert table["cells"][0][0] == 1.0 and table["cells"][1][0] == pytest.approx(1.0)


def test_fewer_than_three_common_methods_give_no_row():
    summary = [_row(m, "deletion_auc", v) for m, v in (("x", 0.1), ("y", 0.2), ("z", 0.3))]
    summary += [_row(m, "insertion_auc", v) for m, v in (("x", 0.1), ("y", 0.2))]
    assert agreement(summary, REAL, HIGHER, {"deletion_auc", "insertion_auc"}) == []
