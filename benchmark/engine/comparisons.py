"""comparisons.csv: the paired tests of a run, in the families the analysis fixes
(:mod:`benchmark.engine.analysis`, ``ANALYSIS.md``).

Every test is on the questions both sides have, of one estimand — the mean paired difference —
with its seeded bootstrap CI and the sign-flip permutation p of that mean
(:func:`benchmark.engine.stats.paired_test`). Holm's correction runs within a family; a family holds
only the *real* methods (never a baseline, ``random`` and ``center``, nor a bracket that reads
the answer key), so adding a baseline, a bracket or another model to a run changes no corrected
p-value of the others:

- ``method``: every pair of real methods on one model, metric (target region);
  family ``method|<model>|<metric>``;
- ``model``: one real method on two models, per metric; the estimand is the difference between
  the models of the method's gain over ``random`` on the same question (deletion and insertion
  AUCs move with how strongly each model's score reacts to any deletion; the gain is measured
  from each model's own ``random``), or the raw difference when the run has no ``random``;
  for a pair the analysis declares (:data:`benchmark.engine.analysis.MODEL_PAIRS`, in its
  order) family ``model|<a> vs <b>|<metric>``, the real methods; any other pair of the run's
  models (training-seed replicates, a user's own models) is exploratory: uncorrected p, no
  family;
- ``region``: target − size-matched control, per model and metric; family
  ``region|<model>|<metric>``, the real methods;
- ``baseline``: each real method against each baseline on one model and metric, reported with
  its uncorrected p and in no family (``family`` empty, ``p_holm`` empty);
- ``exploratory``: a method the analysis did not name (``Attribution.exploratory``) against
  each real method; it also takes the ``baseline``, ``model`` and ``region`` tests, all
  uncorrected and in no family, so adding one changes no corrected p.
"""
from __future__ import annotations

from itertools import combinations
from typing import Dict, List, Optional, Sequence, Set

import numpy as np

from benchmark.engine.analysis import MODEL_PAIRS
from benchmark.engine.stats import holm, paired_test

COLUMNS = ["kind", "metric", "region", "fixed", "a", "b", "n", "mean_diff", "ci_low",
           "ci_high", "p", "p_holm", "family", "estimand"]
REFERENCE = "random"
#: the grounding test: the question's region against the size-matched control, same samples
REGION_PAIR = ("target", "control")
MEAN = "mean difference"
GAIN = "mean difference of the gain over random"


def _scored(by_key: Dict[tuple, Dict[str, float]], a: tuple, b: tuple, seed: int,
            ref_a: Optional[dict] = None, ref_b: Optional[dict] = None) -> Optional[dict]:
    """The paired test of keys ``a`` and ``b`` on their shared samples; with references, of
    (a − ref_a) against (b − ref_b) (a gain over each side's reference)."""
    va, vb = by_key.get(a), by_key.get(b)
    if va is None or vb is None:
        return None
    ids = sorted(set(va) & set(vb) & (set(ref_a) & set(ref_b) if ref_a and ref_b else set(va)))
    x = np.array([va[s] - (ref_a[s] if ref_a else 0.0) for s in ids])
    y = np.array([vb[s] - (ref_b[s] if ref_b else 0.0) for s in ids])
    return paired_test(x, y, seed=seed)


def _corrected(tests: List[dict], family: str) -> List[dict]:
    for row, p in zip(tests, holm([r["p"] for r in tests])):
        row["p_holm"], row["family"] = p, family
    return tests


#: the model pairs the analysis tests (in its order: the first is ``a``)
DECLARED = {(a, b) for a, b, _ in MODEL_PAIRS}


def comparisons(rows: Sequence[dict], seed: int, real: Set[str], baselines: Set[str],
                exploratory: Set[str] = frozenset()) -> List[dict]:
    """The run's tests (module docstring); ``real`` are the methods to rank, ``baselines``
    ``random``, ``center`` and the like, ``exploratory`` the methods tested outside every
    family (the brackets are in none: never tested)."""
    return tests_of(values_by_key(rows), seed, real, baselines, exploratory)


def values_by_key(rows: Sequence[dict]) -> Dict[tuple, Dict[str, float]]:
    """(model, method, metric, region) → sample id → value (NaN where empty): what the tests
    read, far smaller than the rows."""
    by_key: Dict[tuple, Dict[str, float]] = {}
    for r in rows:
        v = r.get("value")
        by_key.setdefault((r["model"], r["method"], r["metric"], r["region"]), {})[
            r["sample_id"]] = float("nan") if v in (None, "") else float(v)
    return by_key


def tests_of(by_key: Dict[tuple, Dict[str, float]], seed: int, real: Set[str],
             baselines: Set[str], exploratory: Set[str] = frozenset()) -> List[dict]:
    """:func:`comparisons` from :func:`values_by_key`'s index."""
    models = sorted({k[0] for k in by_key})
    main = sorted({(k[2], k[3]) for k in by_key if k[3] in ("target", "")})
    out: List[dict] = []
    for metric, region in main:
        for model in models:
            out += _method_tests(by_key, model, metric, region, seed, real,
                                 baselines, exploratory)
        for a, b in combinations(models, 2):
            a, b = (b, a) if (b, a) in DECLARED else (a, b)
            out += _model_tests(by_key, a, b, metric, region, seed, real, exploratory)
    for metric in sorted({k[2] for k in by_key if k[3] == REGION_PAIR[1]}):
        for model in models:
            out += _region_tests(by_key, model, metric, seed, real, baselines | exploratory)
    return out


def _method_tests(by_key, model: str, metric: str, region: str, seed: int, real: Set[str],
                  baselines: Set[str], exploratory: Set[str]) -> List[dict]:
    have = sorted(m for m in real | baselines | exploratory if (model, m, metric, region) in by_key)
    base = {"kind": "method", "metric": metric, "region": region, "fixed": model,
            "estimand": MEAN}
    standing = {m: 2 if m in real else 1 if m in exploratory else 0 for m in have}
    family, loose = [], []
    for a, b in combinations(have, 2):
        if standing[a] < standing[b]:
            a, b = b, a  # the real method first, then an exploratory one
        if not standing[a]:
            continue  # two baselines: nothing to learn
        test = _scored(by_key, (model, a, metric, region), (model, b, metric, region), seed)
        if standing[b] == 2:
            family.append({**base, "a": a, "b": b, **test})
        else:  # against a baseline or an exploratory method: reported, never corrected
            kind = "baseline" if b in baselines else "exploratory"
            loose.append({**base, "kind": kind, "a": a, "b": b, **test,
                          "p_holm": float("nan"), "family": ""})
    return _corrected(family, f"method|{model}|{metric}") + loose


def _model_tests(by_key, a: str, b: str, metric: str, region: str, seed: int,
                 real: Set[str], exploratory: Set[str]) -> List[dict]:
    ref_a = by_key.get((a, REFERENCE, metric, region))
    ref_b = by_key.get((b, REFERENCE, metric, region))
    gain = ref_a is not None and ref_b is not None
    family, loose = [], []
    for method in sorted(real | exploratory):
        test = _scored(by_key, (a, method, metric, region), (b, method, metric, region), seed,
                       ref_a if gain else None, ref_b if gain else None)
        if test is not None:
            (family if method in real else loose).append(
                {"kind": "model", "metric": metric, "region": region, "fixed": method,
                 "a": a, "b": b, **test, "estimand": GAIN if gain else MEAN})
    if (a, b) not in DECLARED:
        family, loose = [], family + loose
    return _corrected(family, f"model|{a} vs {b}|{metric}") + \
        [{**row, "p_holm": float("nan"), "family": ""} for row in loose]


def _region_tests(by_key, model: str, metric: str, seed: int, real: Set[str],
                  baselines: Set[str]) -> List[dict]:
    family, loose = [], []
    for method in sorted(real | baselines):
        test = _scored(by_key, (model, method, metric, REGION_PAIR[0]),
                       (model, method, metric, REGION_PAIR[1]), seed)
        if test is None:
            continue
        row = {"kind": "region", "metric": metric, "region": "target-control",
               "fixed": f"{model}/{method}", "a": REGION_PAIR[0], "b": REGION_PAIR[1],
               **test, "estimand": MEAN}
        if method in real:
            family.append(row)
        else:
            loose.append({**row, "p_holm": float("nan"), "family": ""})
    return _corrected(family, f"region|{model}|{metric}") + loose
