"""The run plan: nested seeded subsets per method and metric, every question keeping its rows,
and a plan that runs everything giving the same numbers as a run without one."""
import csv

import numpy as np
import pytest

from benchmark.engine import plan
from benchmark.core.errors import InputError
from tests.fixtures.loader_helpers import in_process

RUN = ["--models", "blip-itm-tiny", "--methods", "cross_attn_gradcam,integrated_gradients,random",
       "--metrics", "pointing_game,deletion_auc,insertion_auc,random_logit", "--limit", "8",
       "--batch-size", "4", "--steps", "4", "--quiet", "--no-report"]


def test_ranks_are_a_seeded_permutation_and_counts_nest():
    ranks = plan.question_ranks(50, seed=3)
    assert sorted(ranks.tolist()) == list(range(50))
    assert np.array_equal(ranks, plan.question_ranks(50, seed=3))
    assert not np.array_equal(ranks, plan.question_ranks(50, seed=4))
    small, large = plan.inside(ranks, 10), plan.inside(ranks, 25)
    assert sum(small) == 10 and all(b for a, b in zip(small, large) if a)  # nested


def test_a_pair_runs_on_the_smaller_of_its_two_counts():
    run = plan.resolve(["ig", "cam"], ["deletion_auc", "pointing_game"], 50,
                       {"ig": 64, "deletion_auc": 200, "sanity.ig": 4}, defaults={})
    assert run.count("ig", "deletion_auc") == 64 and run.count("cam", "deletion_auc") == 200
    assert run.count("cam", "pointing_game") is None  # every question
    assert run.sanity == {"ig": 4, "cam": 50}
    full = plan.resolve(["ig"], ["deletion_auc"], 50, {}, full=True, defaults={"ig": 8})
    assert full.count("ig", "deletion_auc") is None and full.sanity == {"ig": None}
    with pytest.raises(InputError, match="not a method or metric of this run"):
        plan.resolve(["ig"], ["deletion_auc"], 50, {"rollout": 3})
    with pytest.raises(InputError, match="KEY=N"):
        plan.parse_counts(["ig=-1"])
    assert plan.parse_counts(["sanity.ig=0"]) == {"sanity.ig": 0}  # 0: not run


def test_questions_outside_a_count_keep_noted_rows(tmp_path, capsys):
    out = tmp_path / "run"
    p = in_process(RUN + ["--plan-count", "integrated_gradients=3", "--plan-count",
                          "deletion_auc=5", "--plan-count", "sanity=2", "--out", out], capsys)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["sample_id"] for r in rows} == {r["sample_id"] for r in rows
                                              if r["method"] == "integrated_gradients"}
    ig = [r for r in rows if r["method"] == "integrated_gradients" and r["region"] in ("target", "")
          and r["metric"] in ("pointing_game", "deletion_auc")]
    scored = {r["sample_id"] for r in ig if not r["note"].startswith("excluded: outside")}
    assert len(scored) == 3
    cam = [r for r in rows if r["method"] == "cross_attn_gradcam" and r["metric"] == "deletion_auc"]
    in_plan = {r["sample_id"] for r in cam if "outside the run plan" not in r["note"]}
    assert len(in_plan) == 5 and scored <= in_plan  # nested: IG's 3 are among deletion's 5
    tokens = list(csv.DictReader((out / "tokens.csv").open()))  # IG's token rows: its 3 too
    assert {r["sample_id"] for r in tokens if r["method"] == "integrated_gradients"} == scored
    sanity = list(csv.DictReader((out / "sanity.csv").open()))
    assert {r["n"] for r in sanity} == {"2"}


def test_a_full_plan_gives_the_numbers_of_a_run_without_one(tmp_path, capsys):
    for name, extra in (("full", ["--full"]), ("counts", ["--plan-count",
                                                          "integrated_gradients=8"])):
        assert in_process(RUN + extra + ["--sanity-samples", "8", "--out", tmp_path / name],
                          capsys).returncode == 0
    a = (tmp_path / "full" / "results.csv").read_bytes()
    assert a == (tmp_path / "counts" / "results.csv").read_bytes()
