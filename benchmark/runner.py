"""The engine: dataset → model → method → heatmap → metrics → tidy result rows.

Work is split into (model, method, batch) units. Each unit's rows are written atomically to the
run folder's ``cache/`` (:mod:`benchmark.cache`) as soon as they are computed; a run started
again with the same command (:mod:`benchmark.config`) skips the units already there, so a killed
run finishes with the same bytes as an uninterrupted one. Every localisation metric is scored on
the question's target region and on the evidence, near-miss distractor and size-matched control
regions of the same image. A method that does not apply to a model, a
non-finite map, or a sample without a region keeps its rows, with an empty value and a ``note``.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import metrics
from benchmark import models
from benchmark.cache import UnitCache
from benchmark.config import RunConfig, load_dataset
from benchmark.errors import InputError
from benchmark.models.protocol import VLModel
from benchmark.progress import RunProgress
from benchmark.aggregate import effect_summary, mean_curves
from benchmark.counterfactual import can_rerender, object_effects, object_masks, semantic_stream
from benchmark.scoring import UNCONVERGED, counterfactual_rows, localisation_rows, model_metric_rows
from benchmark import batch_inputs as inputs
from benchmark.batch_inputs import configured_method
from benchmark.sanity_run import sanity_names, sanity_rows
from methods.base import Diagnostic, NotApplicable
from metrics.vqa import exact_match, vqa_accuracy

@dataclass
class RunResult:
    rows: List[dict] = field(default_factory=list)
    curves: List[dict] = field(default_factory=list)
    sanity: List[dict] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)
    model_info: Dict[str, dict] = field(default_factory=dict)
    method_info: Dict[str, dict] = field(default_factory=dict)
    gallery: List[dict] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    dataset_info: dict = field(default_factory=dict)
    nonfinite_maps: Dict[str, int] = field(default_factory=dict)
    higher_is_better: Dict[str, bool] = field(default_factory=dict)


def _unit(model: VLModel, method_name: str, recs, records, b: int, cfg: RunConfig,
          correct: Dict[str, float], scorer: Callable, tolerance: float,
          effects: Dict[str, Optional[dict]]) -> dict:
    """Compute one (model, method, batch) unit: its rows and the maps of its gallery samples.

    A method's diagnostics each become a metric row (their direction is returned in
    ``directions``); maps it marks invalid (an estimator that did not converge) keep their rows,
    with a note and no value, and are left out of every mean.
    """
    method = configured_method(method_name, cfg)
    reason = method.applicable(model)
    images = inputs.images(recs, model)
    kinds = {m: metrics.get(m).kind for m in cfg.metrics}
    loc = [m for m, k in kinds.items() if k == "localisation"]
    mod = [m for m, k in kinds.items() if k == "model"]
    cf = [m for m, k in kinds.items() if k == "counterfactual"]
    maps, valid = None, None
    diagnostics: Dict[str, Diagnostic] = {}
    model = inputs.fed(model, recs, records, cfg)
    if reason is None:
        try:
            out = method.explain(model, images, [r.question for r in recs],
                                 seed=cfg.seed * 100003 + b,
                                 masks=[r.target_mask for r in recs],
                                 counterfactuals=_counterfactual_inputs(recs, effects))
            maps, diagnostics, valid = out.maps, out.diagnostics, out.valid
        except NotApplicable as e:
            reason = str(e)
    maps_np = None if maps is None else maps.numpy()
    invalid: Dict[int, str] = {}
    for i in range(len(recs) if maps_np is not None else 0):
        if valid is not None and not bool(valid[i]):
            invalid[i] = UNCONVERGED
        elif not np.isfinite(maps_np[i]).all():
            invalid[i] = "non-finite map"
    base_rows = [{"model": model.name, "method": method_name, "sample_id": r.sample_id,
                  "question_type": r.family, "correct": correct.get(r.sample_id)}
                 for r in recs]
    rows = []
    cf_why = reason or next((metrics.get(m).applicable(model) for m in cf), None)
    for i, r in enumerate(recs):
        unconverged = invalid.get(i) == UNCONVERGED
        heat = None if maps_np is None or unconverged else maps_np[i]
        why = invalid[i] if unconverged else reason
        rows += localisation_rows(base_rows[i], loc, heat, r, tolerance, why)
        rows += counterfactual_rows(base_rows[i], cf, heat, r, effects.get(r.sample_id),
                                     tolerance, invalid[i] if unconverged else cf_why)
    rows += model_metric_rows(base_rows, mod, model, images, recs, maps, invalid, reason,
                               scorer, cfg)
    for key, d in diagnostics.items():
        rows += [{**base_rows[i], "metric": key, "region": "", "value": float(d.values[i]),
                  "note": ""} for i in range(len(recs))]
    gallery = {r.sample_id: maps_np[i].tolist() for i, r in enumerate(recs)
               if maps_np is not None and r.sample_id in _gallery_ids(records, cfg)}
    nonfinite = sum(1 for why in invalid.values() if why == "non-finite map")
    return {"rows": rows, "gallery": gallery, "nonfinite": nonfinite,
            "directions": {k: d.higher_is_better for k, d in diagnostics.items()}}


def _counterfactual_inputs(recs, effects: Dict[str, Optional[dict]]) -> Optional[list]:
    """Per record (object masks, Δ per object) for methods that read them, or None."""
    if not effects:
        return None
    return [None if effects.get(r.sample_id) is None else (object_masks(r),
                                                            effects[r.sample_id]["delta"])
            for r in recs]


def _effects(model: VLModel, recs, records, cfg: RunConfig) -> Dict[str, Optional[dict]]:
    """The model's Δ per object for a batch (:mod:`benchmark.counterfactual`)."""
    own = lambda rs: inputs.segmentation(model, rs, records, cfg.segmentation, cfg.seed)  # noqa: E731
    return object_effects(model, recs, model.preprocess,
                          semantic_stream(model, cfg.segmentation, own))


def _gallery_ids(records, cfg: RunConfig) -> set:
    return {r.sample_id for r in records[:cfg.gallery]}


def _predict(model: VLModel, records, cfg: RunConfig) -> Dict[str, str]:
    """The model's answer to every question (empty strings for a model without a VQA head)."""
    if not model.answers:
        return {r.sample_id: "" for r in records}
    out = {}
    for idx in inputs.batches(len(records), cfg.batch_size):
        recs = [records[i] for i in idx]
        fed = inputs.fed(model, recs, records, cfg)
        preds = fed.predict_answers(inputs.images(recs, model), [r.question for r in recs])
        out.update({r.sample_id: p for r, p in zip(recs, preds)})
    return out


def run(cfg: RunConfig, out: Optional[Path] = None, progress: bool = True,
        log: Optional[Callable[[str], None]] = None) -> RunResult:
    """Compute every requested (model, method, metric, sample) value, resuming from ``out``."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    result = RunResult()
    t0 = time.time()
    data = load_dataset(cfg)
    n = len(data) if cfg.limit is None else min(cfg.limit, len(data))
    records = [data[i] for i in range(n)]
    if not records:
        raise InputError(f"dataset {cfg.dataset!r} has no samples")
    if cfg.insertion_start is None:
        cfg = replace(cfg, insertion_start=data.insertion_start)
    result.dataset_info = {**data.describe(), "n_used": n, "fingerprint": data.fingerprint(records),
                           "insertion_start": cfg.insertion_start}
    scorer = exact_match if data.exact_match else vqa_accuracy
    result.dataset_info["answer_scoring"] = "exact match" if data.exact_match else "VQA accuracy"
    side = min(records[0].image.shape[:2])
    tolerance = cfg.tolerance if cfg.tolerance is not None else data.pointing_tolerance(side)
    result.dataset_info.update(pointing_tolerance_px=tolerance, image_size=side)
    result.timings["load_data_s"] = time.time() - t0
    result.higher_is_better = {m: metrics.get(m).higher_is_better
                               for m in cfg.metrics}
    result.higher_is_better.update(tie_fraction=False, max_tied=False)
    cache = UnitCache(out, cfg.digest(), cfg.device)
    for name in cfg.methods:
        m = configured_method(name, cfg)
        result.method_info[name] = {"is_baseline": m.is_baseline, "needs": list(m.needs),
                                    "options": m.config}
    batches = inputs.batches(n, cfg.batch_size)
    missing = {m: models.missing(m, **_model_options(m, cfg)) for m in cfg.models}
    runnable = [m for m in cfg.models if not missing[m]]
    units = [(m, meth, b, len(idx)) for m in runnable for meth in cfg.methods
             for b, idx in enumerate(batches)]
    bars = RunProgress(sum(u[3] for u in units),
                       sum(k for m, meth, b, k in units if cache.has(m, meth, f"batch-{b:05d}")),
                       enabled=progress)

    for model_name in cfg.models:
        options = _model_options(model_name, cfg)
        if missing[model_name]:
            result.skipped[model_name] = missing[model_name]
            log(f"skipping {model_name}: {missing[model_name]}")
            continue
        t_model = time.time()
        model = models.load(model_name, device=cfg.device, **options)
        result.model_info[model_name] = dict(model.info)
        if model.side_input_classes("segmentation") is not None:
            result.model_info[model_name]["segmentation"] = cfg.segmentation
        predictions = cache.get(model_name, "predictions")
        if predictions is None:
            predictions = _predict(model, records, cfg)
            cache.put(predictions, model_name, "predictions")
        correct = {r.sample_id: scorer(predictions[r.sample_id], r.answers) if predictions[r.sample_id]
                   else None for r in records}
        gallery_maps: Dict[str, Dict[str, list]] = {}
        effects: Dict[str, Optional[dict]] = {}
        if _wants_effects(cfg, model, records):
            for b, idx in enumerate(batches):
                part = cache.get(model_name, "effects", f"batch-{b:05d}")
                if part is None:
                    part = _effects(model, [records[i] for i in idx], records, cfg)
                    cache.put(part, model_name, "effects", f"batch-{b:05d}")
                effects.update(part)
            result.model_info[model_name]["counterfactual"] = effect_summary(effects)
        for method_name in cfg.methods:
            t_method = time.time()
            bars.unit(f"{model_name} × {method_name}", n)
            nonfinite = 0
            for b, idx in enumerate(batches):
                unit = cache.get(model_name, method_name, f"batch-{b:05d}")
                computed = unit is None
                if computed:
                    unit = _unit(model, method_name, [records[i] for i in idx], records, b, cfg,
                                 correct, scorer, tolerance, effects)
                    cache.put(unit, model_name, method_name, f"batch-{b:05d}")
                result.rows += unit["rows"]
                result.higher_is_better.update(unit.get("directions", {}))
                nonfinite += unit["nonfinite"]
                for sid, m in unit["gallery"].items():
                    gallery_maps.setdefault(sid, {})[method_name] = m
                bars.advance(len(idx), computed)
            bars.close_unit()
            if nonfinite:
                result.nonfinite_maps[f"{model_name}/{method_name}"] = nonfinite
                log(f"warning: {model_name} × {method_name}: {nonfinite} non-finite maps "
                    "(counted as misses / excluded, see results.csv notes)")
            result.timings[f"{model_name}/{method_name}_s"] = time.time() - t_method
        if sanity_names(cfg) and not model.info.get("untrained"):
            bars.unit(f"{model_name} × sanity checks", len(cfg.methods))
            result.sanity += sanity_rows(model, records, cfg, cache, done=bars.advance_unit)
            bars.close_unit()
        result.timings[f"{model_name}_s"] = time.time() - t_model
        for r in records[:cfg.gallery]:
            result.gallery.append({"model": model_name, "record": r,
                                   "prediction": predictions.get(r.sample_id, ""),
                                   "correct": (correct.get(r.sample_id) or 0.0) >= 1.0,
                                   "maps": {k: np.asarray(v, np.float32)
                                            for k, v in gallery_maps.get(r.sample_id, {}).items()}})
    bars.close()
    result.curves = mean_curves(result.rows)
    result.timings["total_s"] = time.time() - t0
    return result


def _wants_effects(cfg: RunConfig, model: VLModel, records) -> bool:
    """Whether the run needs the model's Δ per object (a counterfactual metric or method asked
    for, a trained model, re-renderable data)."""
    asked = any(metrics.get(m).kind == "counterfactual" for m in cfg.metrics) \
        or "counterfactual_oracle" in cfg.methods
    return asked and not model.info.get("untrained") and any(can_rerender(r) for r in records)


def _model_options(name: str, cfg: RunConfig) -> dict:
    """Loader options from the run config: fusion settings for the embedded fused model."""
    from benchmark.models.embedded import EMBEDDED

    if not cfg.fusion or name not in EMBEDDED or not EMBEDDED[name][0].fused:
        return {}
    return {"model_overrides": {"fusion": {**EMBEDDED[name][0].fusion, **cfg.fusion}}}
