"""agreement.csv: whether two metrics rank the methods alike (LATEC, Klein et al. 2024, found
that they often do not).

Per model and pair of metrics (all questions, target region, registered metrics only: no
diagnostic rows): Kendall's τ between the real methods' rankings, each metric read in its own
direction (1: the same order, −1: reversed), on the methods both metrics have a mean for (at
least three). Rong et al.'s consistency check of ROAD is the ``road_morf`` × ``road_lerf`` row.
"""
from __future__ import annotations

from itertools import combinations
from typing import Dict, List, Sequence, Set

import numpy as np
from scipy.stats import kendalltau

from benchmark.engine.stability import means_of

COLUMNS = ["model", "metric_a", "metric_b", "methods", "tau"]
#: fewer methods than this give no τ worth a row
MIN_METHODS = 3


def agreement(summary: Sequence[dict], real: Set[str], higher_is_better: Dict[str, bool],
              registered: Set[str]) -> List[dict]:
    """The rows of agreement.csv (module docstring) from summary.csv's rows."""
    means = means_of(summary)
    out: List[dict] = []
    for model in sorted({k[0] for k in means}):
        names = sorted({k[2] for k in means if k[0] == model and k[2] in registered})
        for a, b in combinations(names, 2):
            methods = sorted(m for m in real
                             if (model, m, a) in means and (model, m, b) in means)
            if len(methods) < MIN_METHODS:
                continue
            score = {x: [(1 if higher_is_better.get(x, True) else -1) * means[(model, m, x)]
                         for m in methods] for x in (a, b)}
            tau = kendalltau(score[a], score[b]).statistic
            out.append({"model": model, "metric_a": a, "metric_b": b,
                        "methods": len(methods), "tau": None if np.isnan(tau) else float(tau)})
    return out
