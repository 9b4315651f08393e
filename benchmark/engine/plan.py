"""The run plan: on how many questions each method's maps and each metric run.

Cheap maps and metrics run on every question; the costly ones — Integrated Gradients' maps, the
model-based metrics that re-run the model many times per map, PNP-VQA's downstream, the sanity
checks — on a stated subset. The subset is nested and seeded: the run's questions are put in one
order by a permutation seeded with the run's seed, and a count n takes the first n of that order,
so every (method, metric) with the same count reads the same questions, a smaller count's
questions are among a larger one's, and paired comparisons use the questions both sides have.
A (method, metric) pair runs on min(count of the method's maps, count of the metric) questions;
the others keep their rows, noted. Within the subset, records stay in the dataset's order.

``--full`` runs everything on every question; ``--plan-count KEY=N`` overrides one count (KEY: a
method, a metric, ``sanity``, ``sanity.METHOD`` or ``meta``); ``--plan`` prints the plan with its
estimated cost before running.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmark.core.errors import InputError

#: questions of the sanity checks per method (``--sanity-samples`` sets the default)
SANITY = "sanity"
#: questions of the meta-evaluation (:mod:`benchmark.engine.meta_run`; 0: not run)
META = "meta"
#: the default counts (questions of the seeded order); what is not named runs on every question
#: (chosen on the primary models from a calibration run, docs/quickstart.md, "Run plan": each curve on enough
#: questions that cross_attn_gradcam and random have disjoint 95% CIs on both; the VQA metrics,
#: PNP-VQA's downstream and the sanity checks, which no count up to 160 separates or on which
#: no headline rests, at what the 30-minute budget leaves; Integrated Gradients' sanity checks
#: not at all: sMPRT's 100 converged maps per question on a randomised model took up to half
#: an hour for one question in the timed default run)
DEFAULT: Dict[str, int] = {"integrated_gradients": 48, "deletion_auc": 64, "insertion_auc": 96,
                           "vqa_keep_auc": 64, "vqa_drop_auc": 64, "vqa_pnp_sample": 64,
                           "pnp_vqa_accuracy": 24, SANITY: 8, f"{SANITY}.integrated_gradients": 0,
                           # added later, set by what the budget leaves (no calibration):
                           # the random-set drops are shared by every method, ROAD solves a
                           # sparse system per map and point
                           "faithfulness_correlation": 64, "infidelity": 64,
                           "road_morf": 8, "road_lerf": 8,
                           "text_deletion_auc": 64, "text_deletion_lerf_auc": 64,
                           "text_deletion_accuracy_auc": 64,
                           "mm_shap": 32, META: 16,
                           # an exploratory method, on the largest curve count (96): its maps
                           # on every question did not fit the 30 minutes beside the rest
                           "lrp": 96}
OUTSIDE = "excluded: outside the run plan's {n} questions for {what} (--full runs every question)"


@dataclass(frozen=True)
class RunPlan:
    """Resolved counts: ``maps[method]``, ``metrics[metric]``, ``sanity[method]`` (``None``: every
    question), and the seeded rank of every question (its place in the plan's order)."""

    maps: Dict[str, Optional[int]] = field(default_factory=dict)
    metrics: Dict[str, Optional[int]] = field(default_factory=dict)
    sanity: Dict[str, Optional[int]] = field(default_factory=dict)
    #: the meta-evaluation's questions (None: every question; 0: not run)
    meta: Optional[int] = 0

    def count(self, method: str, metric: Optional[str] = None) -> Optional[int]:
        """Questions (method, metric) runs on; ``metric`` None: the method's maps."""
        counts = [self.maps.get(method)] + ([self.metrics.get(metric)] if metric else [])
        finite = [c for c in counts if c is not None]
        return min(finite) if finite else None

    def to_dict(self) -> dict:
        return {"maps": dict(sorted(self.maps.items())),
                "metrics": dict(sorted(self.metrics.items())),
                "sanity": dict(sorted(self.sanity.items())), "meta": self.meta}


def question_ranks(n: int, seed: int) -> np.ndarray:
    """The rank of each of ``n`` questions in the plan's order (a seeded permutation)."""
    order = np.random.default_rng([int(seed), 7919]).permutation(n)
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)
    return ranks


def inside(ranks: Sequence[int], count: Optional[int]) -> List[bool]:
    """Whether each question (by rank) is among the first ``count`` (all when ``None``)."""
    return [count is None or int(r) < count for r in ranks]


def parse_counts(specs: Sequence[str]) -> Dict[str, int]:
    """``["integrated_gradients=64", "sanity=8"]`` → counts (one-line error when malformed)."""
    out: Dict[str, int] = {}
    for spec in specs:
        key, eq, text = spec.partition("=")
        if not eq or not key.strip() or not text.strip().isdigit():
            raise InputError(f"--plan-count expects KEY=N with N ≥ 0 (KEY a method, a metric, "
                             f"sanity or sanity.METHOD; 0: not run), got {spec!r}")
        out[key.strip()] = int(text)
    return out


def resolve(methods: Sequence[str], metrics: Sequence[str], sanity_samples: int,
            overrides: Dict[str, int], full: bool = False,
            defaults: Optional[Dict[str, int]] = None) -> RunPlan:
    """The plan of a run of ``methods`` × ``metrics``: the defaults (none with ``full``), then
    ``overrides``; every key must name one of the run's methods or metrics."""
    counts = {} if full else dict(DEFAULT if defaults is None else defaults)
    known = set(methods) | set(metrics) | {SANITY, META} | {f"{SANITY}.{m}" for m in methods}
    stray = sorted(k for k in overrides if k not in known)
    if stray:
        raise InputError(f"--plan-count {stray[0]}: not a method or metric of this run (nor "
                         "sanity, sanity.METHOD, meta)")
    if SANITY in overrides:  # the user's count for every method beats a default's per method
        counts = {k: v for k, v in counts.items() if not k.startswith(f"{SANITY}.")}
    counts.update(overrides)
    sanity_default = counts.get(SANITY, None if full else sanity_samples)
    return RunPlan(maps={m: counts.get(m) for m in methods},
                   metrics={m: counts.get(m) for m in metrics},
                   sanity={m: counts.get(f"{SANITY}.{m}", sanity_default) for m in methods},
                   meta=counts.get(META, None if full else 0))


def add_arguments(parser) -> None:
    """The run plan's options of ``python -m benchmark``."""
    group = parser.add_argument_group(
        "run plan", "on how many questions each method's maps and each metric run (the first of "
        "a seeded order of the run's questions; see --plan)")
    group.add_argument("--plan", action="store_true",
                       help="print the plan — questions per method × metric and sanity checks, "
                            "with its estimated cost — and exit without running")
    group.add_argument("--full", action="store_true",
                       help="every method and metric on every question, the sanity checks "
                            "included (hours on 2 CPU cores for the embedded default)")
    group.add_argument("--plan-count", action="append", default=[], metavar="KEY=N",
                       help="run KEY on N questions (repeatable): a method (its maps), a "
                            "metric, sanity (every method's sanity checks), sanity.METHOD or "
                            "meta (the metrics' meta-evaluation on the primary models; 0: off)")


def describe(cfg, workers: int = 1) -> str:
    """The plan of ``cfg`` (a :class:`benchmark.engine.config.RunConfig`) as a table: questions per
    method's maps, per metric, and of the sanity checks; its estimated time in ``workers``
    processes."""
    from benchmark.engine.config import load_dataset

    n = len(load_dataset(cfg))
    n = n if cfg.limit is None else min(n, cfg.limit)
    run = cfg.run_plan()

    def q(count: Optional[int]) -> str:
        return str(n if count is None else min(count, n))

    lines = [f"run plan: {n} questions of {cfg.dataset} {cfg.split}, {len(cfg.models)} models "
             f"({', '.join(cfg.models)}); each count takes the first of a seeded order (seed "
             f"{cfg.seed})", "", f"{'method':<28}maps  sanity"]
    lines += [f"{m:<28}{q(run.maps.get(m)):>4}  {q(run.sanity.get(m)):>6}" for m in cfg.methods]
    import metrics
    from metrics.base import MetricKind

    scored = [m for m in cfg.metrics if metrics.get(m).kind is not MetricKind.SANITY]
    lines += ["", f"{'metric':<36}questions (a method's maps bound it)"]
    lines += [f"{m:<36}{q(run.metrics.get(m)):>4}" for m in scored]
    from benchmark.engine.meta_run import meta_models

    if run.meta != 0 and meta_models(cfg):
        lines += ["", f"meta-evaluation of the metrics: {q(run.meta)} questions on "
                  f"{', '.join(meta_models(cfg))}, each test's perturbed model"]
    return "\n".join(lines + ["", cost_line(cfg, run, n, workers)])


def cost_line(cfg, run: RunPlan, n: int, workers: int) -> str:
    """The plan's estimated time, from the measured profile of the embedded models."""
    from benchmark.engine import plan_cost
    from benchmark.engine.meta_run import meta_methods, meta_models
    from benchmark.models.embedded import EMBEDDED

    seconds, unknown = plan_cost.estimate(cfg.models, cfg.methods, cfg.metrics, run, n,
                                          EMBEDDED, workers, (meta_models(cfg), meta_methods(cfg)))
    line = (f"estimated time: {seconds / 60:.0f} min of units in {workers} one-thread "
            f"process{'es' if workers > 1 else ''} (the profile of "
            f"`{plan_cost.PROFILE_COMMAND}`, scaled to this plan; model loading not included)")
    if unknown:
        line += f"; not estimated: {', '.join(unknown)} (cost depends on size and hardware)"
    return line
