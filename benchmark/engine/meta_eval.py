"""The meta-evaluation table (``meta.csv``): which metrics can be trusted to separate methods.

After MetaQuantus (Hedström et al., TMLR 2023), from the scores of every real method on the
run's model (q) and on each perturbed copy (q̂, :mod:`benchmark.engine.meta_run`), per model and
metric, on the questions every real method has in both conditions:

- IAC (intra-consistency): per method, the two-sided Wilcoxon signed-rank p of q against q̂
  (zero differences split; 1 when no score moved), averaged over the methods — as is for the
  resilience test, 1 − p for the adversary test;
- IEC (inter-consistency): resilience, the share of (question, rank position) cells whose method
  keeps its place in the methods' order; adversary, the share of scores that get worse by the
  metric's direction.

Noise resilience NR = mean(IAC_NR, IEC_NR), adversary reactivity AR = mean(IAC_AR, IEC_AR), and
MetaQuantus's meta-consistency MC = the mean of the four. The pass rule is ``ANALYSIS.md``'s:
NR above what independent scores give in expectation, (1/2 + 1/M)/2 for M methods, and AR above
1/2.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Set

import numpy as np
from scipy.stats import wilcoxon

#: fewer common questions than this: not evaluated
MIN_QUESTIONS = 6
COLUMNS = ["model", "metric", "n", "methods", "iac_nr", "iec_nr", "iac_ar", "iec_ar", "nr",
           "ar", "mc", "nr_chance", "passes"]


def iac(q: np.ndarray, q_hat: np.ndarray) -> float:
    """The Wilcoxon signed-rank p of one method's scores before and after (1: none moved)."""
    if np.all(q == q_hat):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the normal approximation's small-sample warning
        return float(wilcoxon(q, q_hat, zero_method="zsplit", alternative="two-sided").pvalue)


def iec_resilience(q: np.ndarray, q_hat: np.ndarray) -> float:
    """The share of (question, rank position) cells of the (methods, questions) score
    matrices whose method keeps its place (ties kept in the methods' order)."""
    return float(np.mean(np.argsort(q, axis=0, kind="stable")
                         == np.argsort(q_hat, axis=0, kind="stable")))


def iec_adversary(q: np.ndarray, q_hat: np.ndarray, higher_is_better: bool) -> float:
    """The share of scores that get worse on the disrupted model."""
    return float(np.mean(q > q_hat if higher_is_better else q < q_hat))


def _matrices(before: Dict[tuple, float], after: Dict[tuple, float], methods: Sequence[str]):
    """(q, q̂) as (methods, questions) arrays over the questions every method has in both."""
    common = sorted(set.intersection(*[{s for (m, s) in before if m == meth}
                                       & {s for (m, s) in after if m == meth}
                                       for meth in methods]))
    q = np.array([[before[(m, s)] for s in common] for m in methods], dtype=float)
    q_hat = np.array([[after[(m, s)] for s in common] for m in methods], dtype=float)
    return q, q_hat


def evaluate(before: Dict[tuple, float], resilience: Dict[tuple, float],
             adversary: Dict[tuple, float], higher_is_better: bool) -> Optional[dict]:
    """One model's and metric's row of the table from its scores keyed (method, sample), or
    ``None`` when fewer than two methods or :data:`MIN_QUESTIONS` common questions."""
    methods = sorted({m for m, _ in before} & {m for m, _ in resilience}
                     & {m for m, _ in adversary})
    if len(methods) < 2:
        return None
    q_nr, qh_nr = _matrices(before, resilience, methods)
    q_ar, qh_ar = _matrices(before, adversary, methods)
    n = min(q_nr.shape[1], q_ar.shape[1])
    if n < MIN_QUESTIONS:
        return None
    out = {"n": n, "methods": len(methods),
           "iac_nr": float(np.mean([iac(a, b) for a, b in zip(q_nr, qh_nr)])),
           "iec_nr": iec_resilience(q_nr, qh_nr),
           "iac_ar": float(np.mean([1.0 - iac(a, b) for a, b in zip(q_ar, qh_ar)])),
           "iec_ar": iec_adversary(q_ar, qh_ar, higher_is_better)}
    out["nr"] = (out["iac_nr"] + out["iec_nr"]) / 2
    out["ar"] = (out["iac_ar"] + out["iec_ar"]) / 2
    out["mc"] = (out["nr"] + out["ar"]) / 2
    out["nr_chance"] = (0.5 + 1.0 / len(methods)) / 2
    out["passes"] = bool(out["nr"] > out["nr_chance"] and out["ar"] > 0.5)
    return out


def meta_table(rows: Sequence[dict], meta: Sequence[dict], real: Set[str],
               higher_is_better: Dict[str, bool]) -> List[dict]:
    """meta.csv's rows: per model the run meta-evaluated and metric, :func:`evaluate` on the
    run's own scores (``rows``, results.csv's: the target region for localisation metrics)
    and the perturbed ones (``meta``, :data:`benchmark.engine.meta_run.COLUMNS`)."""
    after: Dict[tuple, Dict[str, Dict[tuple, float]]] = defaultdict(lambda: defaultdict(dict))
    for r in meta:
        after[(r["model"], r["metric"])][r["test"]].update(_score(r))
    before: Dict[tuple, Dict[tuple, float]] = defaultdict(dict)
    for r in rows:
        if (r["model"], r["metric"]) in after and r["method"] in real \
                and r["region"] in ("target", ""):
            before[(r["model"], r["metric"])].update(_score(r))
    out = []
    for (model, metric), tests in sorted(after.items()):
        row = evaluate(before[(model, metric)], tests.get("resilience", {}),
                       tests.get("adversary", {}), higher_is_better.get(metric, True))
        out.append({"model": model, "metric": metric, **(row or {"n": 0, "passes": None})})
    return out


def _score(row: dict) -> Dict[tuple, float]:
    """{(method, sample): value} of a row with a finite value (an undefined score, e.g. a
    correlation over constant drops, is a missing one), else {}."""
    v = row["value"]
    return {} if v is None or not np.isfinite(v) else {(row["method"], row["sample_id"]): v}


def passing(table: Sequence[dict]) -> Optional[Set[str]]:
    """The metrics that pass on every model they were evaluated on (``None``: the run has no
    meta-evaluation, so nothing is known either way)."""
    if not table:
        return None
    verdicts: Dict[str, List[bool]] = defaultdict(list)
    for r in table:
        if r.get("passes") not in (None, ""):
            verdicts[r["metric"]].append(str(r["passes"]) in ("True", "true", "1"))
    return {m for m, v in verdicts.items() if v and all(v)}
