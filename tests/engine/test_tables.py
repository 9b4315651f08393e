"""summary.csv and comparisons.csv from hand-made result rows, against plain numpy/scipy."""
import numpy as np
import pytest

from benchmark.engine.comparisons import comparisons
from benchmark.engine.tables import summarise
from benchmark.engine.stats import bootstrap_ci, holm, paired_test

FAMILIES = ["count", "exist", "count", "spatial", "exist", "count"]


def _rows(model, method, values, correct, ids=None):
    ids = ids or [f"s{i}" for i in range(len(values))]
    return [{"model": model, "method": method, "metric": "m", "region": "", "sample_id": s,
             "question_type": FAMILIES[int(s[1:])], "correct": c,
             "value": "" if v is None else v, "note": ""}
            for s, v, c in zip(ids, values, correct)]


def test_summary_splits_by_subset_and_family_and_counts_exclusions():
    values = [0.1, 0.5, None, 0.9, 0.2, 0.4]
    correct = [1, 0, 1, 1, 1, 0]
    rows = {(r["subset"], r["question_type"]): r
            for r in summarise(_rows("A", "x", values, correct), seed=0, higher_is_better={})}
    assert set(rows) == {(s, f) for s in ("all", "correct")
                         for f in ("all", "count", "exist", "spatial")}
    everything = rows[("all", "all")]
    assert (everything["n"], everything["n_excluded"]) == (5, 1)  # the empty value is counted
    assert everything["mean"] == pytest.approx(np.mean([0.1, 0.5, 0.9, 0.2, 0.4]))
    assert (everything["ci_low"], everything["ci_high"]) == \
        bootstrap_ci([0.1, 0.5, 0.9, 0.2, 0.4], seed=0)[1:]
    count = rows[("all", "count")]  # samples 0, 2 (excluded), 5
    assert (count["n"], count["n_excluded"], count["mean"]) == (2, 1, pytest.approx(0.25))
    right = rows[("correct", "all")]  # answered correctly: samples 0, 2 (excluded), 3, 4
    assert (right["n"], right["n_excluded"]) == (3, 1)
    assert right["mean"] == pytest.approx(np.mean([0.1, 0.9, 0.2]))


def test_comparisons_pair_the_same_samples_and_holm_correct_each_family():
    rng = np.random.default_rng(0)
    base = rng.random(6)
    rows = (_rows("A", "x", base.tolist(), [1] * 6)
            + _rows("A", "y", (base + 0.3).tolist(), [1] * 6)
            + _rows("A", "z", (base - rng.random(6)).tolist(), [1] * 6)
            # model B has only four of the samples: the model pair uses those four
            + _rows("B", "x", (base[[0, 2, 3, 5]] + 0.1).tolist(), [1] * 4,
                    ids=["s0", "s2", "s3", "s5"]))
    out = comparisons(rows, seed=0, real={"x", "y", "z"}, baselines=set())
    models = [r for r in out if r["kind"] == "model"]
    assert [(r["fixed"], r["a"], r["b"], r["n"]) for r in models] == [("x", "A", "B", 4)]
    assert models[0]["mean_diff"] == pytest.approx(-0.1)
    assert models[0]["estimand"] == "mean difference"  # no random in this run: raw
    methods = [r for r in out if r["kind"] == "method"]
    assert [(r["fixed"], r["a"], r["b"]) for r in methods] == \
        [("A", "x", "y"), ("A", "x", "z"), ("A", "y", "z")]  # B has one method: no pair
    vals = {m: np.array([r["value"] for r in rows if r["model"] == "A" and r["method"] == m])
            for m in "xyz"}
    for r in methods:
        ref = paired_test(vals[r["a"]], vals[r["b"]], seed=0)
        assert r["mean_diff"] == pytest.approx(np.mean(vals[r["a"]] - vals[r["b"]]))
        assert r["p"] == ref["p"] and r["family"] == "method|A|m"
    assert [r["p_holm"] for r in methods] == pytest.approx(holm([r["p"] for r in methods]))


def test_a_family_is_the_real_methods_on_one_model_and_metric():
    """Adding baselines, brackets or another model to a run changes no corrected p-value:
    baselines are compared but in no family, brackets never, and each model is its own
    family (it used to be every pair of every model, baselines and oracles included)."""
    rng = np.random.default_rng(3)
    vals = {m: rng.random(6) for m in ("x", "y", "z", "random", "oracle")}

    def rows(models, methods):
        return [r for model in models for m in methods for r in _rows(
            model, m, (vals[m] + (0.1 if model == "B" else 0)).tolist(), [1] * 6)]

    small = comparisons(rows(["A"], "xyz"), 0, {"x", "y", "z"}, set())
    large = comparisons(rows(["A", "B"], ["x", "y", "z", "random", "oracle"]), 0,
                        {"x", "y", "z"}, {"random"})
    key = lambda r: (r["kind"], r["fixed"], r["a"], r["b"])  # noqa: E731
    first = {key(r): r["p_holm"] for r in small if r["kind"] == "method"}
    again = {key(r): r["p_holm"] for r in large if r["kind"] == "method" and r["fixed"] == "A"}
    assert first == again and len(first) == 3
    assert not any("oracle" in (r["a"], r["b"]) for r in large)
    loose = [r for r in large if r["kind"] == "baseline"]
    assert {(r["a"], r["b"]) for r in loose if r["fixed"] == "A"} == \
        {("x", "random"), ("y", "random"), ("z", "random")}
    assert all(r["family"] == "" and np.isnan(r["p_holm"]) for r in loose)
    gain = [r for r in large if r["kind"] == "model"]
    assert all(r["estimand"] == "mean difference of the gain over random" for r in gain)
    assert all(r["mean_diff"] == pytest.approx(0.0, abs=1e-9) for r in gain)  # both shift 0.1



def test_model_tests_have_a_family_only_for_the_pairs_the_analysis_declares():
    """The declared pair (fused − baseline at one ViT depth) is tested in the declared order
    and Holm-corrected over the real methods; a pair the analysis does not name (two
    training-seed replicates) is reported uncorrected, in no family."""
    rng = np.random.default_rng(5)
    vals = {m: rng.random(6) for m in ("x", "y")}
    models = {"blip-itm-tiny-plain-vit1": 0.0, "difnet-itm-tiny-plain": 0.2,
              "difnet-itm-tiny-plain-s1": 0.1}
    rows = [r for model, shift in models.items() for m in ("x", "y")
            for r in _rows(model, m, (vals[m] + shift).tolist(), [1] * 6)]
    tests = [r for r in comparisons(rows, 0, {"x", "y"}, set()) if r["kind"] == "model"]
    declared = [r for r in tests if r["family"]]
    assert {(r["a"], r["b"]) for r in declared} == \
        {("difnet-itm-tiny-plain", "blip-itm-tiny-plain-vit1")}
    assert all(r["mean_diff"] == pytest.approx(0.2) for r in declared)
    assert [r["p_holm"] for r in declared] == pytest.approx(holm([r["p"] for r in declared]))
    loose = [r for r in tests if not r["family"]]
    assert len(loose) == 4 and all(np.isnan(r["p_holm"]) for r in loose)


def test_an_exploratory_method_is_tested_against_every_other_but_enters_no_family():
    """A method added after the analysis was fixed: compared with the real methods, the
    baselines and across the declared model pair, every test uncorrected, and no corrected p of
    the real methods changes."""
    rng = np.random.default_rng(7)
    vals = {m: rng.random(6) for m in ("x", "y", "lrp", "random")}
    models = {"blip-itm-tiny-plain-vit1": 0.0, "difnet-itm-tiny-plain": 0.2}

    def rows(methods):
        return [r for model, shift in models.items() for m in methods
                for r in _rows(model, m, (vals[m] + shift).tolist(), [1] * 6)]

    before = comparisons(rows(["x", "y", "random"]), 0, {"x", "y"}, {"random"})
    after = comparisons(rows(["x", "y", "lrp", "random"]), 0, {"x", "y"}, {"random"}, {"lrp"})
    key = lambda r: (r["kind"], r["fixed"], r["a"], r["b"])  # noqa: E731
    assert {key(r): r["p_holm"] for r in before if r["family"]} == \
        {key(r): r["p_holm"] for r in after if r["family"]}
    new = [r for r in after if "lrp" in (r["a"], r["b"], r["fixed"])]
    assert all(r["family"] == "" and np.isnan(r["p_holm"]) for r in new)
    pairs = {(r["kind"], r["a"], r["b"]) for r in new if r["fixed"] == "difnet-itm-tiny-plain"}
    assert pairs == {("exploratory", "x", "lrp"), ("exploratory", "y", "lrp"),
                     ("baseline", "lrp", "random")}
    assert [(r["a"], r["b"]) for r in new if r["kind"] == "model"] == \
        [("difnet-itm-tiny-plain", "blip-itm-tiny-plain-vit1")]
