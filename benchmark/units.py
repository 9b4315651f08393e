"""The work of a run, split into units that can be computed anywhere: per model its answers and
its Δ per object (:class:`ModelState`), then one unit per (model, method, batch) and one sanity
unit per (model, method). Every unit reads only the run's :class:`Plan` and its model's state and
goes into the unit cache (:mod:`benchmark.cache`) under :func:`unit_key`; the local runner and the
Ray engine compute the same units and merge them the same way, hence the same bytes.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional

import numpy as np

import metrics
from benchmark import batch_inputs as inputs
from benchmark import models
from benchmark.aggregate import effect_summary
from benchmark.batch_inputs import configured_method
from benchmark.config import RunConfig, load_dataset
from benchmark.counterfactual import can_rerender, object_effects, object_masks, semantic_stream
from benchmark.errors import ExcludedSample, InputError, MissingImage
from benchmark.memory import bound
from benchmark.models.protocol import VLModel
from benchmark.scoring import (UNCONVERGED, counterfactual_rows, localisation_rows,
                               model_metric_rows, reference_metric_rows)
from methods.base import Diagnostic, NotApplicable
from metrics.vqa import exact_match, vqa_accuracy


@dataclass
class Plan:
    """What every unit of a run reads besides its model: the configuration (with the dataset's
    insertion start filled in), the records, their batches, the answer scorer and each image's
    pointing tolerance."""

    cfg: RunConfig
    records: list
    batches: List[List[int]]
    scorer: Callable
    tolerance: Dict[str, float]  # sample id → pointing tolerance in px at its image's size
    dataset_info: dict
    #: samples that cannot be scored (image file missing, empty question): id → (question
    #: family, note); they get rows with an empty value and the note instead of entering any unit
    excluded: Dict[str, tuple] = field(default_factory=dict)
    #: the dataset's own reference rows for the run's metrics (e.g. inter-human agreement)
    reference_rows: List[dict] = field(default_factory=list)


def make_plan(cfg: RunConfig) -> Plan:
    """Load the dataset of ``cfg`` and fix what the units share."""
    data = load_dataset(cfg)
    n = len(data) if cfg.limit is None else min(cfg.limit, len(data))
    records, excluded, reasons, example = [], {}, Counter(), None
    for i in range(n):
        try:
            records.append(data[i])
        except ExcludedSample as e:
            excluded[e.sample_id] = (e.family, e.note)
            reasons[e.reason] += 1
            example = example or e
    if not records and set(reasons) == {MissingImage.reason}:
        raise InputError(f"every image of the run's {n} questions is missing, e.g. {example}")
    if not records and excluded:
        raise InputError(f"none of the run's {n} questions can be scored "
                         f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))}), "
                         f"e.g. {example}")
    if not records:
        raise InputError(f"dataset {cfg.dataset!r} has no samples")
    if cfg.insertion_start is None:
        cfg = replace(cfg, insertion_start=data.insertion_start)
    # per image: a dataset may scale the tolerance with the image's side
    tolerance = {r.sample_id: float(cfg.tolerance) if cfg.tolerance is not None else
                 float(data.pointing_tolerance(min(r.image.shape[:2]))) for r in records}
    sides = sorted({min(r.image.shape[:2]) for r in records})
    values = sorted(set(tolerance.values()))
    info = {**data.describe(), "n_used": n, "fingerprint": data.fingerprint(records, excluded),
            "images_missing": reasons[MissingImage.reason], "excluded": dict(sorted(reasons.items())),
            "insertion_start": cfg.insertion_start,
            "answer_scoring": "exact match" if data.exact_match else "VQA accuracy",
            "pointing_tolerance_px": values[0] if len(values) == 1 else
            {"min": values[0], "max": values[-1], "per": "image"},
            "image_size": sides[0] if len(sides) == 1 else {"min": sides[0], "max": sides[-1]}}
    return Plan(cfg, records, inputs.batches(len(records), cfg.batch_size),
                exact_match if data.exact_match else vqa_accuracy, tolerance, info, excluded,
                [r for r in data.reference_rows(records) if r["metric"] in cfg.metrics])


def unit_key(b: int) -> str:
    """The cache name of batch ``b`` (under the model's and the method's folders)."""
    return f"batch-{b:05d}"


class ModelState:
    """One model of a run with what its units read, each taken from ``cache`` or computed and
    put there: its manifest entry (``info``), its answer to every question (``predictions``,
    and ``correct`` as scored), and its Δ per object (``effects``; empty when no counterfactual
    metric or method asks). The model itself is loaded (``load()``) only when something has to
    be computed, so merging a run whose units are all cached loads none."""

    def __init__(self, name: str, plan: Plan, cache, load: Callable[[], VLModel]) -> None:
        self.name, self._load, self._model, self._cfg = name, load, None, plan.cfg
        cfg, records = plan.cfg, plan.records
        self.info = cache.get(name, "info")
        if self.info is None:
            self.info = dict(self.model.info, images_per_forward=self.model.max_batch_images)
            if self.model.side_input_classes("segmentation") is not None:
                self.info["segmentation"] = cfg.segmentation
            cache.put(self.info, name, "info")
        self.predictions = cache.get(name, "predictions")
        if self.predictions is None:
            with inputs.precision(cfg):
                self.predictions = _predict(self.model, records, cfg)
            cache.put(self.predictions, name, "predictions")
        self.effects: Dict[str, Optional[dict]] = {}
        if _wants_effects(cfg, self.info, records):
            for b, idx in enumerate(plan.batches):
                part = cache.get(name, "effects", unit_key(b))
                if part is None:
                    with inputs.precision(cfg):
                        part = _effects(self.model, [records[i] for i in idx], records, cfg)
                    cache.put(part, name, "effects", unit_key(b))
                self.effects.update(part)
        self.correct = {r.sample_id: plan.scorer(self.predictions[r.sample_id], r.answers)
                        if self.predictions[r.sample_id] else None for r in records}

    @property
    def model(self) -> VLModel:
        """The loaded model, bounded to the run's images per forward; a model whose weights
        are not those of the run folder's first run is refused (its units would mix)."""
        if self._model is None:
            cfg = self._cfg
            model = bound(self._load(), cfg.max_batch_images, cfg.memory_budget_gb)
            known = self.info  # None while the first run's entry is being written
            if known and known.get("fingerprint") != model.fingerprint:
                raise InputError(f"model {self.name!r} is not the one this run folder was "
                                 f"started with (fingerprint {model.fingerprint[:12]}, the "
                                 f"folder's {str(known.get('fingerprint'))[:12]}): its weights "
                                 "changed; use another --out")
            self._model = model
        return self._model

    def manifest_info(self) -> dict:
        """The manifest's entry: the model's info, its segmentation stream, and how strongly
        single objects move it."""
        return {**self.info, **({"counterfactual": effect_summary(self.effects)}
                                if self.effects else {})}


def model_state(name: str, plan: Plan, cache) -> ModelState:
    """:class:`ModelState` of the registered model ``name`` on the run's device."""
    return ModelState(name, plan, cache, lambda: models.load(
        name, device=plan.cfg.device, **model_options(name, plan.cfg)))


def compute_unit(state: ModelState, plan: Plan, method_name: str, b: int) -> dict:
    """Batch ``b`` of ``method_name`` on the state's model (see :func:`_unit`), at the run's
    precision."""
    recs = [plan.records[i] for i in plan.batches[b]]
    with inputs.precision(plan.cfg):
        return _unit(state.model, method_name, recs, plan.records, b, plan.cfg, state.correct,
                     plan.scorer, plan.tolerance, state.effects)


def _unit(model: VLModel, method_name: str, recs, records, b: int, cfg: RunConfig,
          correct: Dict[str, float], scorer: Callable, tolerance: Dict[str, float],
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
    ref = [m for m, k in kinds.items() if k == "reference"]
    maps, valid = None, None
    diagnostics: Dict[str, Diagnostic] = {}
    model = inputs.fed(model, recs, records, cfg)
    seconds: Dict[str, float] = {}  # where the unit's time goes (the run's profile)
    t0 = time.perf_counter()
    if reason is None:
        try:
            out = method.explain(model, images, [r.question for r in recs],
                                 seed=cfg.seed * 100003 + b,
                                 masks=[r.target_mask for r in recs],
                                 counterfactuals=_counterfactual_inputs(recs, effects))
            maps, diagnostics, valid = out.maps, out.diagnostics, out.valid
        except NotApplicable as e:
            reason = str(e)
    seconds["explain"] = time.perf_counter() - t0
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
    t0 = time.perf_counter()
    for i, r in enumerate(recs):
        unconverged = invalid.get(i) == UNCONVERGED
        heat = None if maps_np is None or unconverged else maps_np[i]
        why = invalid[i] if unconverged else reason
        rows += localisation_rows(base_rows[i], loc, heat, r, tolerance[r.sample_id], why)
        rows += reference_metric_rows(base_rows[i], ref, heat, r, why)
        rows += counterfactual_rows(base_rows[i], cf, heat, r, effects.get(r.sample_id),
                                     tolerance[r.sample_id],
                                     invalid[i] if unconverged else cf_why)
    seconds["localisation and counterfactual metrics"] = time.perf_counter() - t0
    rows += model_metric_rows(base_rows, mod, model, images, recs, maps, invalid, reason,
                               scorer, cfg, seconds)
    for key, d in diagnostics.items():
        rows += [{**base_rows[i], "metric": key, "region": "", "value": float(d.values[i]),
                  "note": ""} for i in range(len(recs))]
    gallery = {r.sample_id: maps_np[i].tolist() for i, r in enumerate(recs)
               if maps_np is not None and r.sample_id in gallery_ids(records, cfg)}
    nonfinite = sum(1 for why in invalid.values() if why == "non-finite map")
    return {"rows": rows, "gallery": gallery, "nonfinite": nonfinite,
            "directions": {k: d.higher_is_better for k, d in diagnostics.items()},
            "seconds": seconds}


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


def gallery_ids(records, cfg: RunConfig) -> set:
    return {r.sample_id for r in records[:cfg.gallery]}


def _predict(model: VLModel, records, cfg: RunConfig) -> Dict[str, str]:
    """The model's answer to every question (empty strings for a model without a VQA head)."""
    if not model.answers:
        return {r.sample_id: "" for r in records}
    out = {}
    for idx in inputs.batches(len(records), model.images_per_forward(cfg.batch_size)):
        recs = [records[i] for i in idx]
        fed = inputs.fed(model, recs, records, cfg)
        preds = fed.predict_answers(inputs.images(recs, model), [r.question for r in recs])
        out.update({r.sample_id: p for r, p in zip(recs, preds)})
    return out



def _wants_effects(cfg: RunConfig, info: dict, records) -> bool:
    """Whether the run needs the model's Δ per object (a counterfactual metric or method asked
    for, a trained model, re-renderable data)."""
    asked = any(metrics.get(m).kind == "counterfactual" for m in cfg.metrics) \
        or "counterfactual_oracle" in cfg.methods
    return asked and not info.get("untrained") and any(can_rerender(r) for r in records)


def missing_models(cfg: RunConfig) -> Dict[str, Optional[str]]:
    """Per requested model: ``None`` when it can run here, else the one-line reason (its
    weights are not on disk)."""
    return {m: models.missing(m, **model_options(m, cfg)) for m in cfg.models}


def model_options(name: str, cfg: RunConfig) -> dict:
    """Loader options from the run config: where pretrained files are (for the loaders that
    read them), fusion settings for the embedded fused model."""
    from benchmark.models.embedded import EMBEDDED

    options = {k: getattr(cfg, k) for k in models.reads(name) if getattr(cfg, k)}
    if cfg.fusion and name in EMBEDDED and EMBEDDED[name][0].fused:
        options["model_overrides"] = {"fusion": {**EMBEDDED[name][0].fusion, **cfg.fusion}}
    return options
