"""Aggregation of a run's rows: mean curves, sanity-test summaries, counterfactual effect sizes."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from benchmark.engine.stats import bootstrap_ci


def sanity_summary(tests: Dict[str, list], model: str, method: str, seed: int) -> List[dict]:
    """Per test, stage and statistic, the mean per-sample value with its seeded bootstrap CI:
    for the correlation tests Spearman ρ of the signed maps, its absolute value |ρ|, and ρ of
    the absolute maps; ``emprt``'s relative complexity change."""
    out = []
    for name, stages in tests.items():
        for st in stages:
            stats = {k: [v for v in vs if v is not None and np.isfinite(v)]
                     for k, vs in st.items() if k not in ("stage", "index")}
            if "spearman" in stats:
                stats["abs_spearman"] = [abs(v) for v in stats["spearman"]]
            for stat, xs in sorted(stats.items()):
                mean, lo, hi = bootstrap_ci(xs, seed=seed)
                out.append({"model": model, "method": method, "test": name,
                            "stage": st["stage"], "index": st["index"], "statistic": stat,
                            "n": len(xs), "mean": mean, "ci_low": lo, "ci_high": hi})
    return out


def effect_summary(effects: Dict[str, Optional[dict]]) -> dict:
    """Manifest entry: how strongly single objects move the model (mean |Δ| on the logit, share
    of removals that change the predicted answer)."""
    deltas = [abs(d) for e in effects.values() if e for d in e["delta"]]
    changed = [c for e in effects.values() if e for c in e["answer_changed"]]
    return {"n_samples": sum(1 for e in effects.values() if e), "n_objects": len(deltas),
            "mean_abs_delta_logit": float(np.mean(deltas)) if deltas else None,
            "answer_changed_share": float(np.mean(changed)) if changed else None}


def mean_curves(rows: List[dict], seed: int = 0) -> List[dict]:
    """Mean curve per (model, method, metric) over the samples that have one, each point with
    its sample count and seeded 95% bootstrap CI (:func:`benchmark.engine.stats.bootstrap_ci`, as in
    ``summary.csv``; non-finite points are left out of that point)."""
    groups: Dict[tuple, List[dict]] = {}
    for r in rows:
        if r.get("curve") is not None:
            groups.setdefault((r["model"], r["method"], r["metric"]), []).append(r)
    out = []
    for (model, method, metric), rs in sorted(groups.items()):
        ys = np.array([r["curve"] for r in rs], dtype=np.float64)
        for x, y in zip(rs[0]["curve_x"], ys.T):
            mean, lo, hi = bootstrap_ci(y, seed=seed)
            out.append({"model": model, "method": method, "metric": metric, "x": x,
                        "value": mean, "n": int(np.isfinite(y).sum()), "ci_low": lo,
                        "ci_high": hi})
    return out
