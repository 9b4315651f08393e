"""The estimated cost of a run plan, from a measured profile.

``plan_profile.json`` holds seconds per question and per model of every ``method/part`` of the
embedded tiny models on this project's reference machine (one torch thread per process, two
processes on 2 CPU cores), read from the ``profile_s`` of the run in ``PROFILE_COMMAND`` by
:func:`per_question`; ``model`` is the per-model setup (answers, Δ per object). The estimate
multiplies each part by the questions the plan gives it; models that are not embedded have no
estimate (their cost depends on their size and the hardware).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

#: the run whose manifest gave ``PROFILE`` (its ``profile_s``, divided by questions × models)
PROFILE_COMMAND = ("OMP_NUM_THREADS=1 python -m benchmark --models blip-itm-tiny-plain,"
                   "difnet-itm-tiny-plain --full --limit 16 --plan-count sanity=4 "
                   "--out runs/profile")
#: the same for what was added after it, merged in: every method on the later metrics (their
#: sanity part added to each method's), and the later method on every metric (alone, so it
#: also bears the shared inputs: an overestimate)
LATER_COMMANDS = (PROFILE_COMMAND.replace(" --out runs/profile", " --metrics faithfulness_"
                  "correlation,infidelity,road_morf,road_lerf,sparseness,sensitivity_max "
                  "--out runs/profile-a"),
                  PROFILE_COMMAND.replace(" --out runs/profile",
                                          " --methods raw_attention --out runs/profile-b"),
                  # ROAD's entries, at its default 5 points
                  PROFILE_COMMAND.replace("sanity=4 --out runs/profile", "sanity=0 --metrics "
                                          "road_morf,road_lerf --out runs/profile-road"))
#: seconds per question and model: ``method/part`` (a part is ``explain``, a metric, the
#: localisation metrics together, or ``sanity checks``); the per-model setup under ``model``
PROFILE: Dict[str, float] = json.loads((Path(__file__).parent / "plan_profile.json").read_text())
SETUP = "model"
SANITY = "sanity checks"
EXPLAIN = ("explain", "localisation and counterfactual metrics")


def per_question(manifest: dict, questions: int, sanity: int) -> Dict[str, float]:
    """The profile of a run's ``manifest`` as seconds per question and model (``questions``
    per part, ``sanity`` for the sanity checks); the rest of each model's time is its setup."""
    profile, timings = manifest["profile_s"], manifest["timings_s"]
    models = [m for m in manifest["models"]]
    out = {k: round(v / ((sanity if k.endswith(SANITY) else questions) * len(models)), 4)
           for k, v in sorted(profile.items())}
    units = sum(v for k, v in timings.items() if k.count("/") == 1)
    setup = sum(timings[f"{m}_s"] for m in models) - units - sum(
        v for k, v in profile.items() if k.endswith(SANITY))
    out[SETUP] = round(setup / (questions * len(models)), 4)
    return out


def estimate(models: Iterable[str], methods: Iterable[str], metrics: Iterable[str], run,
             n: int, embedded: Iterable[str], workers: int = 1,
             meta: Tuple[Iterable[str], Iterable[str]] = ((), ())) -> Tuple[float, Tuple[str, ...]]:
    """Estimated seconds of a plan ``run`` (a :class:`benchmark.engine.plan.RunPlan`) on ``n``
    questions in ``workers`` one-thread processes, and the models it cannot estimate.
    ``meta``: (the models the meta-evaluation perturbs, the methods it explains again), each
    test's scores costing what the run's own do on its questions."""
    embedded = set(embedded)

    def q(count: Optional[int]) -> int:
        return n if count is None else min(count, n)

    def within_meta(count: Optional[int]) -> int:
        return q(count if run.meta is None else run.meta if count is None
                 else min(count, run.meta))

    meta_models, meta_methods = (set(x) for x in meta)
    tests = 2 if run.meta != 0 else 0  # resilience and adversary

    total, unknown = 0.0, []
    for model in models:
        if model.split("@")[0] not in embedded:
            unknown.append(model)
            continue
        total += PROFILE.get(SETUP, 0.0) * n
        for method in methods:
            total += sum(PROFILE.get(f"{method}/{p}", 0.0) for p in EXPLAIN) * q(run.count(method))
            if "@init" not in model:  # untrained controls skip these and the sanity checks
                total += sum(PROFILE.get(f"{method}/{m}", 0.0) * q(run.count(method, m))
                             for m in metrics)
                total += PROFILE.get(f"{method}/{SANITY}", 0.0) * q(run.sanity.get(method))
            if model in meta_models and method in meta_methods:
                total += tests * sum(PROFILE.get(f"{method}/{p}", 0.0) for p in EXPLAIN) * \
                    within_meta(run.count(method))
                total += tests * sum(PROFILE.get(f"{method}/{m}", 0.0) * within_meta(
                    run.count(method, m)) for m in metrics)
    return total / max(1, workers), tuple(unknown)
