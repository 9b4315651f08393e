"""The engine: dataset → model → method → heatmap → metrics → tidy result rows.

Work is split into (model, method, batch) units. Each unit's rows are written atomically to the
run folder's ``cache/`` (:mod:`benchmark.engine.cache`) as soon as they are computed; a run started
again with the same command (:mod:`benchmark.engine.config`) skips the units already there, so a killed
run finishes with the same bytes as an uninterrupted one. Every localisation metric is scored on
the question's target region and on the evidence, near-miss distractor and size-matched control
regions of the same image. A method that does not apply to a model, a
non-finite map, or a sample without a region keeps its rows, with an empty value and a ``note``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Set

import numpy as np

import metrics
from benchmark.engine.aggregate import mean_curves
from benchmark.engine.batch_inputs import configured_method
from benchmark.engine.cache import UnitCache
from benchmark.engine.config import RunConfig
from benchmark.engine.meta_run import meta_weight
from benchmark.engine.progress import RunProgress
from benchmark.engine.sanity_run import sanity_names, sanity_rows, sanity_weight
from benchmark.engine.scoring import MAP_DIAGNOSTICS, excluded_rows
from benchmark.engine.run_data import load_run_data, unit_key
from benchmark.engine.unit_rows import compute_unit
from benchmark.engine.units import missing_models, model_state


@dataclass
class RunResult:
    rows: List[dict] = field(default_factory=list)
    curves: List[dict] = field(default_factory=list)
    sanity: List[dict] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)
    model_info: Dict[str, dict] = field(default_factory=dict)
    method_info: Dict[str, dict] = field(default_factory=dict)
    gallery: List[dict] = field(default_factory=list)
    #: per sample and question token, a method's relevance (tokens.csv)
    tokens: List[dict] = field(default_factory=list)
    #: per model and sample, the modality metrics (modality.csv)
    modality: List[dict] = field(default_factory=list)
    #: per primary model, perturbation test, real method, metric and sample: the score on the
    #: perturbed model (:mod:`benchmark.engine.meta_run`; meta.csv summarises it)
    meta: List[dict] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    #: "method/part" → seconds over every model and batch (part: explain, a metric, sanity
    #: checks), as recorded when each unit was computed
    profile: Dict[str, float] = field(default_factory=dict)
    dataset_info: dict = field(default_factory=dict)
    nonfinite_maps: Dict[str, int] = field(default_factory=dict)
    higher_is_better: Dict[str, bool] = field(default_factory=dict)
    #: rows that describe a map rather than score it (ties, an estimator's convergence): the
    #: reports keep them out of the rankings, in a table of their own
    diagnostics: Set[str] = field(default_factory=lambda: set(MAP_DIAGNOSTICS))


def exclusion_warnings(data) -> List[str]:
    """One warning line per reason the data excluded questions for (their rows are kept)."""
    total = len(data.records) + len(data.excluded)
    lines = []
    for reason, count in data.dataset_info.get("excluded", {}).items():
        example = next(note for _, note in data.excluded.values() if reason in note)
        what = "have no image file" if reason == "image missing" else f"are excluded ({reason})"
        lines.append(f"warning: {count} of {total} questions {what}; their rows are kept with a "
                     f"note, e.g. {example}")
    return lines


def run(cfg: RunConfig, out: Optional[Path] = None, progress: bool = True,
        log: Optional[Callable[[str], None]] = None,
        threads: Optional[int] = None) -> RunResult:
    """Compute every requested (model, method, metric, sample) value, resuming from ``out``:
    units already in its cache are read, the others computed and cached, and all merged.
    ``threads``: the torch threads per process the folder's units were summed with (checked
    against the folder's; default: this process's)."""
    import torch

    threads = threads or torch.get_num_threads()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    result = RunResult()
    t0 = time.time()
    data = load_run_data(cfg)
    cfg = data.cfg
    result.dataset_info = dict(data.dataset_info)
    result.timings["load_data_s"] = time.time() - t0
    result.higher_is_better = {m: metrics.get(m).higher_is_better for m in cfg.metrics}
    result.higher_is_better.update({name: False for name in MAP_DIAGNOSTICS})
    cache = UnitCache(out, cfg.digest(), cfg.device, data.dataset_info["fingerprint"],
                      cfg.pipeline_fingerprint(), threads)
    for line in exclusion_warnings(data):
        log(line)
    for name in cfg.methods:
        m = configured_method(name, cfg)
        result.method_info[name] = {"is_baseline": m.is_baseline, "role": m.role,
                                    "needs": list(m.needs), "options": m.config}
    missing = missing_models(cfg)
    weight = {meth: sanity_weight(data, meth) for meth in cfg.methods}
    with _progress(data, cache, [m for m in cfg.models if not missing[m]], weight,
                   progress) as bars:
        for model_name in cfg.models:
            if missing[model_name]:
                result.skipped[model_name] = missing[model_name]
                log(f"skipping {model_name}: {missing[model_name]}")
                continue
            _run_model(model_name, data, cache, bars, weight, result, log)
    result.rows += data.reference_rows
    result.curves = mean_curves(result.rows, cfg.seed)
    result.timings["total_s"] = time.time() - t0
    return result


def _progress(data, cache: UnitCache, runnable: List[str], weight: Dict[str, int],
              enabled: bool) -> RunProgress:
    """The run's bars: every (model, method) map and sanity unit, those cached counted done."""
    cfg = data.cfg
    units = [(m, meth, b, data.maps_in(meth, b)) for m in runnable
             for meth in cfg.methods for b in range(len(data.batches))]
    total = sum(u[3] for u in units) + len(runnable) * sum(weight.values()) + sum(
        meta_weight(data, m) for m in runnable)
    done = sum(k for m, meth, b, k in units if cache.has(m, meth, unit_key(b))) + sum(
        weight[meth] for m in runnable for meth in cfg.methods if cache.has(m, meth, "sanity"))
    return RunProgress(total, done, enabled=enabled)


def _run_model(model_name: str, data, cache: UnitCache, bars: RunProgress,
               weight: Dict[str, int], result: RunResult, log: Callable[[str], None]) -> None:
    """Every unit of one model (from the cache or computed), its sanity checks and gallery."""
    cfg, records = data.cfg, data.records
    t_model = time.time()
    state = model_state(model_name, data, cache)
    bars.advance(meta_weight(data, model_name), True)  # its meta-evaluation (in its state)
    result.model_info[model_name] = state.manifest_info()
    result.modality += state.modality
    result.meta += state.meta
    gallery_maps: Dict[str, Dict[str, list]] = {}
    for method_name in cfg.methods:
        t_method = time.time()
        bars.unit(f"{model_name} × {method_name}",
                  sum(data.maps_in(method_name, b) for b in range(len(data.batches))))
        nonfinite = 0
        for b in range(len(data.batches)):
            unit = cache.get(model_name, method_name, unit_key(b))
            computed = unit is None
            if computed:
                unit = compute_unit(state, data, method_name, b)
                cache.put(unit, model_name, method_name, unit_key(b))
            nonfinite += _merge_unit(result, unit, method_name, gallery_maps)
            bars.advance(data.maps_in(method_name, b), computed)
        bars.close_unit()
        result.rows += excluded_rows(model_name, method_name, cfg.metrics, data.excluded)
        if nonfinite:
            result.nonfinite_maps[f"{model_name}/{method_name}"] = nonfinite
            log(f"warning: {model_name} × {method_name}: {nonfinite} non-finite maps "
                "(counted as misses / excluded, see results.csv notes)")
        result.timings[f"{model_name}/{method_name}_s"] = time.time() - t_method
    if sanity_names(cfg) and not state.info.get("untrained"):
        bars.unit(f"{model_name} × sanity checks", len(cfg.methods), unit="method")
        result.sanity += sanity_rows(
            state, data, cache, seconds=result.profile,
            done=lambda meth, computed: bars.advance(weight[meth], computed, steps=1))
        bars.close_unit()
    else:
        bars.shrink(sum(weight.values()))
    result.timings[f"{model_name}_s"] = time.time() - t_model
    words: Dict[str, Dict[str, list]] = {}
    for t in result.tokens:
        if t["model"] == model_name:
            words.setdefault(t["sample_id"], {}).setdefault(t["method"], []).append(
                (t["token"], t["relevance"]))
    for r in records[:cfg.gallery]:
        result.gallery.append({"model": model_name, "record": r,
                               "prediction": state.predictions.get(r.sample_id, ""),
                               "correct": (state.correct.get(r.sample_id) or 0.0) >= 1.0,
                               "maps": {k: np.asarray(v, np.float32)
                                        for k, v in gallery_maps.get(r.sample_id, {}).items()},
                               "tokens": words.get(r.sample_id, {})})


def _merge_unit(result: RunResult, unit: dict, method_name: str,
                gallery_maps: Dict[str, Dict[str, list]]) -> int:
    """Add one unit's rows, profile, directions and gallery maps; return its non-finite maps."""
    for part, t in unit.get("seconds", {}).items():
        key = f"{method_name}/{part}"
        result.profile[key] = result.profile.get(key, 0.0) + t
    result.rows += unit["rows"]
    result.tokens += unit.get("tokens", [])
    result.higher_is_better.update(unit.get("directions", {}))
    result.diagnostics.update(unit.get("directions", {}))
    for sid, m in unit["gallery"].items():
        gallery_maps.setdefault(sid, {})[method_name] = m
    return unit["nonfinite"]
