"""The sanity metrics of a run: per method, on its questions of the run plan (the first of the
plan's seeded order: ``--sanity-samples``, ``--plan-count sanity.METHOD=N``), cached per (model,
method) unit and summarised with seeded bootstrap CIs."""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional

import metrics
from benchmark.engine.aggregate import sanity_summary
from benchmark.engine import batch_inputs as inputs
from benchmark.engine.batch_inputs import configured_method
from benchmark.engine.cache import UnitCache
from benchmark.engine.config import RunConfig
from benchmark.engine.passes import part
from benchmark.engine.run_data import RunData
from benchmark.models.protocol import VLModel
from metrics.base import MetricKind


def sanity_names(cfg: RunConfig) -> List[str]:
    return [m for m in cfg.metrics if metrics.get(m).kind is MetricKind.SANITY]


def sanity_weight(data: RunData, method_name: str) -> int:
    """The overall progress bar's count for the sanity unit of ``method_name`` on a trained model:
    its questions × the ``nominal_maps`` its tests declare (0 for a ground-truth reader, or
    when the run has no sanity test)."""
    if configured_method(method_name, data.cfg).reads_ground_truth:
        return 0
    return len(data.sanity_records(method_name)) * sum(
        inputs.configured_metric(t, data.cfg).nominal_maps for t in sanity_names(data.cfg))


def sanity_unit(model: VLModel, method_name: str, data: RunData) -> dict:
    """The sanity tests of one method on its questions of the run plan: test → stages, each with
    its per-sample statistics (empty when the method does not apply or reads the ground
    truth)."""
    cfg = data.cfg
    method = configured_method(method_name, cfg)
    method = method.with_options(**method.sanity_options)  # what the tests do not read: off
    recs = data.sanity_records(method_name)
    if method.applicable(model) or method.reads_ground_truth or not recs:
        return {}
    with inputs.precision(cfg), part(f"{method_name}/sanity"):
        return _sanity_tests(model, method, recs, data.records, cfg)


def _sanity_tests(model: VLModel, method, recs, records, cfg: RunConfig) -> dict:
    from metrics.sanity import SharedMaps, correlations, explain

    method = SharedMaps(method)
    images, questions = inputs.images(recs, model), [r.question for r in recs]
    tests = {}
    fed = inputs.fed(model, recs, records, cfg)
    for name in sanity_names(cfg):
        fn = inputs.configured_metric(name, cfg)
        value = fn(fed, method, images, questions, seed=cfg.seed)
        if fn.rerun_row:
            # the same model, another seed: ~0 for a random map, 1 for a deterministic method
            rerun = correlations(explain(method, fed, images, questions, seed=cfg.seed),
                                 explain(method, fed, images, questions, seed=cfg.seed + 1))
            value = [{"stage": "rerun with seed+1 (no randomisation)", "index": -1,
                      **rerun}] + value
        tests[name] = value
    return tests


def sanity_rows(state, data: RunData, cache: UnitCache,
                done: Callable[[str, bool], None] = lambda method, computed: None,
                seconds: Optional[Dict[str, float]] = None) -> List[dict]:
    """The sanity metrics per method (:func:`sanity_unit`, cached per method): per test, stage
    and statistic, the mean per-sample value with its seeded bootstrap CI, on the model of
    ``state`` (:class:`benchmark.engine.units.ModelState`, loaded only if a unit is missing).
    ``done(method, computed)`` after each method; each unit's time, as recorded when it was
    computed, is added to ``seconds`` under ``method/sanity checks``."""
    cfg = data.cfg
    out = []
    for method_name in cfg.methods:
        tests = cache.get(state.name, method_name, "sanity")
        computed = tests is None
        if computed:
            t0 = time.perf_counter()
            tests = sanity_unit(state.model, method_name, data)
            cache.put(time.perf_counter() - t0, state.name, method_name, "sanity-seconds")
            cache.put(tests, state.name, method_name, "sanity")
        if seconds is not None:
            key = f"{method_name}/sanity checks"
            seconds[key] = seconds.get(key, 0.0) + (
                cache.get(state.name, method_name, "sanity-seconds") or 0.0)
        out += sanity_summary(tests, state.name, method_name, cfg.seed)
        done(method_name, computed)
    return out
