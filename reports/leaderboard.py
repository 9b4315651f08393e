"""The report's first screen: per model, the methods × headline metrics, each score normalised so
that ``random`` is 0 and the oracle 1, methods ordered by their mean rank, and one computed
sentence saying which method leads and whether it leads significantly.

Normalisation: :math:`s = (m - m_{random}) / (m_{oracle} - m_{random})` on the metric's mean over
the questions (all questions, target region). The oracle is ``oracle`` (the ground-truth mask)
for grounding and faithfulness metrics and ``counterfactual_oracle`` (the model's own
per-object effects) for the counterfactual metrics. The formula holds for either direction: a
method as good as the oracle scores 1 and one no better than random 0, whichever way the metric
runs. A run without the oracle (e.g. a new method against two old ones and ``random``) is
normalised against what it has: the difference to ``random`` in the metric's direction (above 0:
better than random), and without ``random`` either, ranks only; the board says which, per
metric, in one line (:attr:`Board.note`).

Ranks are taken per metric among the methods that are not baselines (1 = best by the metric's
direction, ties share the mean rank), and averaged over the analysis's primary metrics
(:mod:`benchmark.engine.analysis`) a method has a value for — over every headline metric when the run
has none of them. A run with a meta-evaluation (``meta.csv``) averages only over the primary
metrics that pass it, and says which it left out (:attr:`Board.ranked_by`). Models come in the analysis's order, primary first, each labelled with its
role (the supervised pair: "trained with word grounding").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set

import numpy as np
from scipy.stats import rankdata

import metrics
from benchmark.engine.analysis import ALPHA, PRIMARY_METRICS, SECONDARY_METRICS, in_plan_order, role
from reports.run_files import as_float, is_true

#: the metrics of the first screen, in column order (those the run computed): the analysis's
#: primary metrics, which the ranking reads, then its secondary ones
HEADLINE = PRIMARY_METRICS + SECONDARY_METRICS
REFERENCE = "random"
TEST = "paired sign-flip permutation test of the mean difference, Holm-corrected"


@dataclass
class Cell:
    """One method's score on one metric: the raw mean with its CI and the normalised score."""

    mean: float
    ci_low: float
    ci_high: float
    n: int
    normalised: Optional[float] = None
    rank: Optional[float] = None

#: how a metric's cells are normalised: a share of the random-to-oracle gap, the difference to
#: random in the metric's direction, or not at all (ranks only)
SCALES = {"oracle": "random 0, oracle 1", "random": "difference to random (above 0: better)",
          "rank": "ranks only"}


@dataclass
class Board:
    """One model's leaderboard: ``rows`` are ``(method, is_baseline, mean rank, {metric: Cell})``
    in display order (real methods by mean rank, then the baselines)."""

    model: str
    metrics: List[str]
    higher_is_better: Dict[str, bool]
    rows: List[tuple] = field(default_factory=list)
    sentence: str = ""
    #: the model's role in the analysis (primary, trained with word grounding, …)
    role: str = "other"
    #: metric → the key of :data:`SCALES` its cells use
    scale: Dict[str, str] = field(default_factory=dict)
    #: one line on which metrics the mean rank reads and why ("" without a meta-evaluation)
    ranked_by: str = ""

    @property
    def note(self) -> str:
        """One line on the metrics not on the random-to-oracle scale, and why ("" if none)."""
        parts = []
        for key, why in (("random", "no oracle in this run: the difference to random in the "
                          "metric's direction (above 0: better than random), not a share of "
                          "the gap to the oracle"),
                         ("rank", "neither random nor the oracle in this run: ranks only")):
            names = [m for m in self.metrics if self.scale.get(m) == key]
            if names:
                parts.append(f"{', '.join(names)}: {why}")
        if not parts:
            return ""
        return ("; ".join(parts) + ". Add oracle (and counterfactual_oracle for the "
                "counterfactual metrics) and random to --methods for the normalised scale.")


def oracle_of(metric: str) -> str:
    """The method that scores 1 on ``metric`` after normalisation."""
    return metrics.get(metric).oracle if metric in metrics.REGISTRY else "oracle"


def boards(summary: Sequence[dict], comparisons: Sequence[dict], baselines: Set[str],
           passing: Optional[Set[str]] = None,
           exploratory: Set[str] = frozenset()) -> List[Board]:
    """The leaderboard of every model in ``summary.csv`` rows (with ``comparisons.csv`` rows for
    the significance sentence); ``passing``: the metrics that pass the run's meta-evaluation
    (``None``: the run has none), the only primary metrics the mean rank then reads;
    ``exploratory``: methods shown with their scores, never ranked."""
    main = [r for r in summary if r["subset"] == "all" and r["question_type"] == "all"
            and r["region"] in ("target", "") and np.isfinite(as_float(r["mean"]))]
    out = []
    for model in in_plan_order(sorted({r["model"] for r in main})):
        rows = [r for r in main if r["model"] == model]
        metrics = [m for m in HEADLINE if any(r["metric"] == m for r in rows)]
        if not metrics:
            continue
        hib = {m: is_true(next(r["higher_is_better"] for r in rows if r["metric"] == m))
               for m in metrics}
        cells: Dict[str, Dict[str, Cell]] = {}
        for r in rows:
            if r["metric"] in metrics:
                cells.setdefault(r["method"], {})[r["metric"]] = Cell(
                    as_float(r["mean"]), as_float(r["ci_low"]), as_float(r["ci_high"]), int(r["n"]))
        board = Board(model, metrics, hib, role=role(model))
        ranked, board.ranked_by = ranked_metrics(metrics, passing)
        for m in metrics:
            board.scale[m] = _normalise(cells, m, hib[m])
            if m not in ranked:
                continue
            real = [meth for meth in cells if meth not in baselines | exploratory
                    and m in cells[meth]]
            signed = [cells[meth][m].mean * (-1 if hib[m] else 1) for meth in real]
            for meth, rank in zip(real, rankdata(signed) if real else []):
                cells[meth][m].rank = float(rank)
        mean_rank = {meth: float(np.mean([c.rank for c in by.values() if c.rank is not None]))
                     for meth, by in cells.items() if meth not in baselines
                     and any(c.rank is not None for c in by.values())}
        order = sorted(mean_rank, key=lambda meth: (mean_rank[meth], meth))
        board.rows = [(meth, False, mean_rank[meth], cells[meth]) for meth in order]
        board.rows += [(meth, False, None, cells[meth]) for meth in sorted(cells)
                       if meth not in baselines and meth not in mean_rank]  # unranked
        board.rows += [(meth, True, None, cells[meth]) for meth in sorted(cells)
                       if meth in baselines]
        board.sentence = sentence(model, order, mean_rank, ranked, hib, comparisons) \
            if ranked else f"{model}: not ranked ({board.ranked_by})."
        out.append(board)
    return out


def ranked_metrics(metrics: List[str], passing: Optional[Set[str]]) -> tuple:
    """(the metrics the mean rank reads, one line saying why): the run's primary metrics
    (every headline metric when it has none), only those that pass the meta-evaluation when
    the run has one."""
    primary = [m for m in metrics if m in PRIMARY_METRICS] or metrics
    if passing is None:
        return primary, ""
    kept = [m for m in primary if m in passing]
    left = [m for m in primary if m not in passing]
    if not kept:
        return [], "no primary metric passes the meta-evaluation (meta.csv)"
    return kept, ("ranked by the primary metrics that pass the meta-evaluation (meta.csv)"
                  + (f"; left out: {', '.join(left)}" if left else ""))


def _normalise(cells: Dict[str, Dict[str, Cell]], metric: str, higher_is_better: bool) -> str:
    """Fill the normalised score of every method's cell of ``metric``; return the scale used."""
    ref = cells.get(REFERENCE, {}).get(metric)
    top = cells.get(oracle_of(metric), {}).get(metric)
    if ref is None:
        return "rank"
    to_oracle = top is not None and top.mean != ref.mean
    for by_metric in cells.values():
        c = by_metric.get(metric)
        if c is not None:
            c.normalised = ((c.mean - ref.mean) / (top.mean - ref.mean) if to_oracle else
                            (c.mean - ref.mean) * (1 if higher_is_better else -1)) + 0.0
    return "oracle" if to_oracle else "random"


def significantly_better(comparisons: Sequence[dict], model: str, metric: str, first: str, second: str,
           higher_is_better: bool) -> Optional[str]:
    """``first`` or ``second`` when that one is significantly better on ``metric`` (Holm-corrected
    paired test), ``None`` when neither is, or when the test is missing."""
    for r in comparisons:
        if r["kind"] != "method" or r["fixed"] != model or r["metric"] != metric \
                or r["region"] not in ("target", "") or {r["a"], r["b"]} != {first, second}:
            continue
        p, diff = as_float(r["p_holm"]), as_float(r["mean_diff"])
        if not (p < ALPHA) or diff == 0:
            return None
        a_better = (diff > 0) == higher_is_better
        return r["a"] if a_better else r["b"]
    return None


def sentence(model: str, order: List[str], mean_rank: Dict[str, float], metrics: List[str],
             higher_is_better: Dict[str, bool], comparisons: Sequence[dict]) -> str:
    """One sentence, computed: the top method by mean rank over the ranked (primary) metrics
    and whether it is significantly ahead of the second on each — by one estimand, the mean
    paired difference, for both the direction and the test."""
    if not order:
        return f"{model}: no method other than the baselines was scored."
    top = order[0]
    head = (f"{model}: {top} ranks first (mean rank {mean_rank[top]:.2f} over "
            f"{len(metrics)} metrics: {', '.join(metrics)})")
    if len(order) == 1:
        return head + "; it is the only method scored."
    second = order[1]
    verdicts = {m: significantly_better(comparisons, model, m, top, second, higher_is_better[m]) for m in metrics}
    ahead = [m for m, v in verdicts.items() if v == top]
    behind = [m for m, v in verdicts.items() if v == second]
    text = (f"{head}; it is significantly ahead of {second} (mean rank {mean_rank[second]:.2f}) "
            f"on {len(ahead)} of {len(metrics)}" + (f" ({', '.join(ahead)})" if ahead else ""))
    if behind:
        text += f", and significantly behind it on {', '.join(behind)}"
    return text + f" ({TEST} within the model and metric, p < {ALPHA})."
