"""Compact comparison tables from comparisons.csv (which keeps every pair with its CI and p):
per (model, metric) a method × method matrix, and per metric a method × model-pair table, each
cell the paired mean difference on the same questions (between models: of each method's gain
over random), marked where the Holm-corrected sign-flip permutation p is below 0.05. Pairs with
no common question never appear."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Set

from reports.leaderboard import ALPHA, HEADLINE
from reports.run_files import as_float


def _cell(r: dict) -> dict:
    p = as_float(r["p_holm"])
    return {"diff": as_float(r["mean_diff"]), "significant": p < ALPHA, "p_holm": p,
            "n": int(r["n"]), "ci_low": as_float(r["ci_low"]), "ci_high": as_float(r["ci_high"])}


def _tested(r: dict, kind: str, metrics: Sequence[str]) -> bool:
    return (r["kind"] == kind and r["metric"] in metrics and r["region"] in ("target", "")
            and r["n"] not in ("", "0"))


def method_matrices(comparisons: Sequence[dict],
                    metrics: Sequence[str] = HEADLINE) -> List[dict]:
    """``[{model, metric, methods, cells}]`` with ``cells[i][j]`` = ``{"diff", "significant",
    "p_holm", "n", "ci_low", "ci_high"}`` for methods i − j (``None`` on the diagonal and where
    the pair was not tested)."""
    pairs: Dict[tuple, Dict[tuple, dict]] = {}
    for r in comparisons:
        if not _tested(r, "method", metrics):
            continue
        cell = _cell(r)
        table = pairs.setdefault((r["fixed"], r["metric"]), {})
        table[(r["a"], r["b"])] = cell
        table[(r["b"], r["a"])] = {**cell, "diff": -cell["diff"],
                                   "ci_low": -cell["ci_high"], "ci_high": -cell["ci_low"]}
    out = []
    order = {m: i for i, m in enumerate(metrics)}
    for (model, metric), table in sorted(pairs.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        methods = sorted({a for a, _ in table})
        cells: List[List[Optional[dict]]] = [[table.get((a, b)) for b in methods] for a in methods]
        out.append({"model": model, "metric": metric, "methods": methods, "cells": cells})
    return out


def controlled(models: Dict[str, dict]) -> Set[tuple]:
    """The model pairs that differ in one factor — the architecture (``config.fused``: baseline
    vs fused) or the training (``recipe``: supervised, plain or untrained) — from the manifest's
    model entries; a model whose entry names neither pairs with every other."""
    def factors(info: dict):
        fused, recipe = (info.get("config") or {}).get("fused"), info.get("recipe")
        return None if fused is None or recipe is None else (fused, recipe)

    names = sorted(models)
    return {(a, b) for i, a in enumerate(names) for b in names[i + 1:]
            if None in (factors(models[a]), factors(models[b]))
            or sum(x != y for x, y in zip(factors(models[a]), factors(models[b]))) == 1}


def model_tables(comparisons: Sequence[dict], metrics: Sequence[str], baselines: Set[str],
                 pairs: Optional[Set[tuple]] = None) -> List[dict]:
    """``[{metric, pairs, methods, cells}]``: per metric, one row per real method (baselines'
    maps do not depend on the model and are left out) and one column per model pair ``a − b``
    that both have the metric (among ``pairs``, in either order, when given);
    ``cells[i][j]`` as in :func:`method_matrices` or ``None``."""
    tables: Dict[str, Dict[tuple, dict]] = {}
    for r in comparisons:
        if pairs is not None and (r["a"], r["b"]) not in pairs and (r["b"], r["a"]) not in pairs:
            continue
        if _tested(r, "model", metrics) and r["fixed"] not in baselines:
            tables.setdefault(r["metric"], {})[(r["fixed"], r["a"], r["b"])] = _cell(r)
    out = []
    for metric in [m for m in metrics if m in tables]:
        table = tables[metric]
        pairs = sorted({(a, b) for _, a, b in table})
        methods = sorted({m for m, _, _ in table})
        out.append({"metric": metric, "pairs": pairs, "methods": methods,
                    "cells": [[table.get((m, a, b)) for a, b in pairs] for m in methods]})
    return out


def agreement_matrices(rows: Sequence[dict]) -> List[dict]:
    """agreement.csv as ``[{model, metrics, cells, methods}]``, ``cells[i][j]`` Kendall's τ
    between metrics i and j's method rankings (1 on the diagonal, ``None`` where the pair has
    too few common methods)."""
    out = []
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model]
        names = sorted({r["metric_a"] for r in mine} | {r["metric_b"] for r in mine})
        tau = {}
        for r in mine:
            tau[(r["metric_a"], r["metric_b"])] = tau[(r["metric_b"], r["metric_a"])] = \
                as_float(r["tau"])
        cells = [[1.0 if a == b else tau.get((a, b)) for b in names] for a in names]
        out.append({"model": model, "metrics": names, "cells": cells,
                    "methods": max(int(r["methods"]) for r in mine)})
    return out


def modality_table(rows: Sequence[dict], seed: int = 0) -> List[dict]:
    """modality.csv summarised: per model and metric the mean share with its seeded bootstrap
    95% CI and n, overall and per question type."""
    from benchmark.engine.stats import bootstrap_ci

    groups: Dict[tuple, List[float]] = {}
    for r in rows:
        for family in ("all", r["question_type"]):
            groups.setdefault((r["model"], r["metric"], family), []).append(as_float(r["t_shap"]))
    out = []
    for (model, metric, family), values in sorted(groups.items()):
        mean, low, high = bootstrap_ci(values, seed=seed)
        out.append({"model": model, "metric": metric, "question_type": family, "mean": mean,
                    "ci_low": low, "ci_high": high, "n": sum(v == v for v in values)})
    return out
