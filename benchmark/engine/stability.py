"""stability.csv: how far a method ranking survives retraining.

Models that share architecture, data and recipe and differ only in their training seed are one
group (the primary models and their replicates ``*-s1``, ``*-s2``). Per group and metric (all
questions, target region): Kendall's τ between the real methods' rankings of every two seeds
(``ranking`` row: mean, min and max over the pairs; ``top_agrees`` whether every seed puts the
same method first), and per real method its mean across the seeds with their min, max and
standard deviation. A ranking is cited only where the seeds agree.
"""
from __future__ import annotations

import json
from itertools import combinations
from typing import Dict, List, Sequence, Set

import numpy as np
from scipy.stats import kendalltau

COLUMNS = ["group", "metric", "row", "seeds", "mean", "min", "max", "sd", "top_agrees"]


def replicate_groups(model_info: Dict[str, dict]) -> Dict[str, List[str]]:
    """First model (by training seed) → the models of its group, for groups of two or more."""
    groups: Dict[str, List[str]] = {}
    for name, info in model_info.items():
        train = dict(info.get("train_config") or {})
        if not train or "seed" not in train or info.get("untrained"):
            continue
        seed = train.pop("seed")
        key = json.dumps([info.get("config"), train], sort_keys=True)
        groups.setdefault(key, []).append((seed, name))
    return {members[0][1]: [n for _, n in sorted(members)]
            for members in (sorted(m) for m in groups.values()) if len(members) > 1}


def means_of(rows: Sequence[dict]) -> Dict[tuple, float]:
    """(model, method, metric) → its mean over all questions (target region or the metric's
    only one) in summary.csv's ``rows``."""
    return {(r["model"], r["method"], r["metric"]): float(r["mean"]) for r in rows
            if r["subset"] == "all" and r["question_type"] == "all"
            and r["region"] in ("target", "") and r["mean"] not in ("", None)
            and np.isfinite(float(r["mean"]))}


def stability(summary: Sequence[dict], model_info: Dict[str, dict], real: Set[str],
              higher_is_better: Dict[str, bool]) -> List[dict]:
    """The rows of stability.csv (module docstring) from summary.csv's rows."""
    means = means_of(summary)
    out: List[dict] = []
    for group, members in sorted(replicate_groups(model_info).items()):
        for metric in sorted({k[2] for k in means if k[0] in members}):
            methods = sorted(m for m in real if all((s, m, metric) in means for s in members))
            if len(methods) < 2:
                continue
            sign = 1 if higher_is_better.get(metric, True) else -1
            scores = {s: [sign * means[(s, m, metric)] for m in methods] for s in members}
            taus = [kendalltau(scores[a], scores[b]).statistic
                    for a, b in combinations(members, 2)]
            tops = {methods[int(np.argmax(scores[s]))] for s in members}
            out.append({"group": group, "metric": metric, "row": "ranking (Kendall tau)",
                        "seeds": len(members), "mean": float(np.mean(taus)),
                        "min": float(np.min(taus)), "max": float(np.max(taus)), "sd": None,
                        "top_agrees": int(len(tops) == 1)})
            for m in methods:
                vals = [means[(s, m, metric)] for s in members]
                out.append({"group": group, "metric": metric, "row": m, "seeds": len(members),
                            "mean": float(np.mean(vals)), "min": float(np.min(vals)),
                            "max": float(np.max(vals)), "sd": float(np.std(vals, ddof=1)),
                            "top_agrees": None})
    return out
