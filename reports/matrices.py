"""Method × method matrices: per (model, metric), the paired mean difference row − column on the
same questions, marked where the Holm-corrected Wilcoxon p is below 0.05 (from comparisons.csv,
which keeps every pair with its CI and p)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from reports.leaderboard import ALPHA, HEADLINE
from reports.run_files import as_float


def method_matrices(comparisons: Sequence[dict],
                    metrics: Sequence[str] = HEADLINE) -> List[dict]:
    """``[{model, metric, methods, cells}]`` with ``cells[i][j]`` = ``{"diff", "significant",
    "p_holm", "n"}`` for methods i, j (``None`` on the diagonal and where the pair was not tested;
    pairs with no common question are left out)."""
    pairs: Dict[tuple, Dict[tuple, dict]] = {}
    for r in comparisons:
        if r["kind"] != "method" or r["metric"] not in metrics or r["region"] not in ("target", "") \
                or r["n"] in ("", "0"):
            continue
        diff, p = as_float(r["mean_diff"]), as_float(r["p_holm"])
        cell = {"diff": diff, "significant": p < ALPHA, "p_holm": p, "n": int(r["n"])}
        table = pairs.setdefault((r["fixed"], r["metric"]), {})
        table[(r["a"], r["b"])] = cell
        table[(r["b"], r["a"])] = {**cell, "diff": -diff}
    out = []
    order = {m: i for i, m in enumerate(metrics)}
    for (model, metric), table in sorted(pairs.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        methods = sorted({a for a, _ in table})
        cells: List[List[Optional[dict]]] = [[table.get((a, b)) for b in methods] for a in methods]
        out.append({"model": model, "metric": metric, "methods": methods, "cells": cells})
    return out
