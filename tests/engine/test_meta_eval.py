"""The meta-evaluation table: MetaQuantus's IAC and IEC on hand-computable scores, the pass
rule of ANALYSIS.md, and the perturbation it starts from."""
import numpy as np
import pytest
from scipy.stats import wilcoxon

from benchmark.engine.meta_eval import (evaluate, iac, iec_adversary, iec_resilience,
                                        meta_table, passing)
from benchmark.engine.meta_run import perturbed


def test_iac_is_the_wilcoxon_p_with_zero_differences_split_and_one_when_nothing_moved():
    q = np.array([0.1, 0.4, 0.35, 0.8, 0.55, 0.2, 0.9])
    moved = q + np.array([0.05, -0.02, 0.0, 0.07, 0.01, 0.03, 0.04])
    assert iac(q, moved) == pytest.approx(
        wilcoxon(q, moved, zero_method="zsplit", alternative="two-sided").pvalue)
    assert iac(q, q.copy()) == 1.0


def test_iec_resilience_counts_rank_positions_kept_and_adversary_counts_scores_made_worse():
    q = np.array([[0.9, 0.1], [0.5, 0.2], [0.1, 0.3]])  # 3 methods × 2 questions
    swapped = np.array([[0.9, 0.1], [0.5, 0.4], [0.1, 0.3]])  # question 2: methods 2 and 3 swap
    # question 1 keeps its 3 positions, question 2 only its first (method 1 lowest)
    assert iec_resilience(q, swapped) == pytest.approx(4 / 6)
    assert iec_resilience(q, q) == 1.0
    worse = np.array([[0.8, 0.1], [0.6, 0.1], [0.0, 0.2]])
    assert iec_adversary(q, worse, higher_is_better=True) == pytest.approx(4 / 6)
    assert iec_adversary(q, worse, higher_is_better=False) == pytest.approx(1 / 6)


def _scores(values: np.ndarray) -> dict:
    return {(f"m{i}", f"s{j:02d}"): float(v) for i, row in enumerate(values)
            for j, v in enumerate(row)}


def test_a_metric_that_holds_under_small_noise_and_drops_under_disruption_passes():
    rng = np.random.default_rng(0)
    q = np.sort(rng.uniform(0.2, 0.9, (3, 12)), axis=0)  # a clear method order everywhere
    result = evaluate(_scores(q), _scores(q), _scores(q - 0.3), higher_is_better=True)
    assert result["iac_nr"] == 1.0 and result["iec_nr"] == 1.0
    assert result["iec_ar"] == 1.0 and result["iac_ar"] > 0.99
    assert result["passes"] and result["n"] == 12 and result["methods"] == 3


def test_independent_scores_do_not_pass_and_a_constant_metric_does_not_react():
    rng = np.random.default_rng(1)
    q = rng.uniform(size=(4, 40))
    noise = [evaluate(_scores(q), _scores(rng.uniform(size=q.shape)),
                      _scores(rng.uniform(size=q.shape)), True) for _ in range(200)]
    # independent draws sit on the chance lines the rule is set against (NR: (1/2 + 1/4)/2,
    # AR: 1/2), so each half of the rule passes about half of them and the rule about a quarter
    assert np.mean([r["nr"] for r in noise]) == pytest.approx(noise[0]["nr_chance"], abs=0.01)
    assert np.mean([r["ar"] for r in noise]) == pytest.approx(0.5, abs=0.01)
    assert np.mean([r["passes"] for r in noise]) < 0.3
    flat = np.full((4, 10), 0.5)
    constant = evaluate(_scores(flat), _scores(flat), _scores(flat), True)
    assert constant["ar"] == 0.0 and not constant["passes"]


def test_too_few_common_questions_or_methods_are_not_evaluated():
    q = np.arange(10.0).reshape(2, 5)
    assert evaluate(_scores(q), _scores(q), _scores(q), True) is None  # 5 < 6 questions
    assert evaluate(_scores(q[:1]), _scores(q[:1]), _scores(q[:1]), True) is None


def test_the_table_reads_the_target_region_and_passing_needs_every_model():
    rng = np.random.default_rng(2)
    q = np.sort(rng.uniform(0.2, 0.9, (2, 8)), axis=0)
    rows, meta = [], []
    for model, drop in (("a", 0.3), ("b", -0.3)):  # on b the disrupted scores get better
        for (meth, sid), v in _scores(q).items():
            rows += [{"model": model, "method": meth, "metric": "pg", "sample_id": sid,
                      "region": region, "value": v + (region != "target")}
                     for region in ("target", "control")]
            meta += [{"model": model, "test": "resilience", "method": meth, "metric": "pg",
                      "sample_id": sid, "value": v},
                     {"model": model, "test": "adversary", "method": meth, "metric": "pg",
                      "sample_id": sid, "value": v - drop}]
    table = meta_table(rows, meta, {"m0", "m1"}, {"pg": True})
    assert [(r["model"], r["passes"], r["iac_nr"]) for r in table] == [("a", True, 1.0),
                                                                       ("b", False, 1.0)]
    assert passing(table) == set()
    assert passing(table[:1]) == {"pg"}
    assert passing([]) is None


def test_the_perturbed_model_is_seeded_and_leaves_the_original_alone():
    from benchmark import models

    model = models.load("blip-itm-tiny@init")
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    a, b = perturbed(model, 0.001, seed=3), perturbed(model, 0.001, seed=3)
    c = perturbed(model, 2.0, seed=3)
    for key, value in model.module.state_dict().items():
        assert torch_equal(value, before[key])
    name, p = next((k, v) for k, v in a.module.named_parameters() if v.dim() >= 2)
    assert torch_equal(p, dict(b.module.named_parameters())[name])
    ratio = (p / before[name]).flatten()
    assert float((ratio - 1).abs().max()) < 0.01 < float((dict(c.module.named_parameters())[name]
                                                          / before[name] - 1).abs().mean())


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_a_run_on_a_primary_model_writes_the_table_and_the_board_says_what_it_ranks(tmp_path):
    import pandas as pd

    from benchmark.cli.main import main

    out = tmp_path / "run"
    assert main(["--models", "blip-itm-tiny-plain", "--methods",
                 "random,cross_attn_gradcam,chefer_relevance,rollout", "--metrics",
                 "deletion_auc,pointing_game_above_chance,sparseness", "--limit", "8",
                 "--steps", "4", "--sanity-samples", "1", "--quiet", "--out", str(out)]) == 0
    table = pd.read_csv(out / "meta.csv")
    assert sorted(table.metric) == ["deletion_auc", "pointing_game_above_chance", "sparseness"]
    assert (table.n >= 6).all() and (table.methods == 3).all()  # the real methods, not random
    assert table.passes.isin([0, 1]).all()
    assert (out / "cache" / "blip-itm-tiny-plain" / "meta" / "adversary.json").exists()
    html = (out / "index.html").read_text()
    assert 'id="meta"' in html
    kept = set(table[table.passes == 1].metric) & {"deletion_auc", "pointing_game_above_chance"}
    assert ("ranked by the primary metrics that pass" in html) == bool(kept)


def test_it_compares_the_real_methods_the_sanity_checks_explain_on_the_primary_models():
    from benchmark.engine import plan
    from benchmark.engine.config import RunConfig
    from benchmark.engine.meta_run import meta_methods, meta_models

    names = ["random", "oracle", "cross_attn_gradcam", "integrated_gradients", "rollout"]
    cfg = RunConfig(models=["difnet-itm-tiny-plain", "blip-itm-tiny", "blip-itm-tiny-plain"],
                    methods=names, metrics=["deletion_auc"])
    cfg.plan = plan.resolve(names, cfg.metrics, 8, {}).to_dict()  # the default: IG's sanity 0
    assert meta_methods(cfg) == ["cross_attn_gradcam", "rollout"]
    assert meta_models(cfg) == ["blip-itm-tiny-plain", "difnet-itm-tiny-plain"]
    cfg.plan = plan.resolve(names, cfg.metrics, 8, {}, full=True).to_dict()
    assert meta_methods(cfg) == ["cross_attn_gradcam", "integrated_gradients", "rollout"]


def test_an_undefined_score_is_a_missing_one():
    rng = np.random.default_rng(3)
    q = np.sort(rng.uniform(0.2, 0.9, (2, 8)), axis=0)
    rows = [{"model": "a", "method": m, "metric": "fc", "sample_id": s, "region": "", "value": v}
            for (m, s), v in _scores(q).items()]
    meta = [{"model": "a", "test": t, "method": m, "metric": "fc", "sample_id": s,
             "value": float("nan") if (t, s) == ("adversary", "s03") else v - (t == "adversary")}
            for t in ("resilience", "adversary") for (m, s), v in _scores(q).items()]
    (row,) = meta_table(rows, meta, {"m0", "m1"}, {"fc": True})
    assert row["n"] == 7 and np.isfinite(row["iac_ar"]) and row["passes"]
