"""One (model, method, batch) unit: the method's maps of the batch's questions and every row of
the run's metrics on them, within the run plan (:mod:`benchmark.engine.plan`).

A method whose map of a sample depends on that sample alone explains only the questions its
plan count covers; every question keeps its rows, those outside a count noted. Maps an
estimator marks invalid (it did not converge) keep their rows, with a note and no value, and are
left out of every mean.
"""
from __future__ import annotations

import time
from typing import Dict, List, Optional

import torch

import metrics
from benchmark.engine import batch_inputs as inputs
from benchmark.engine.batch_inputs import configured_method
from benchmark.engine.object_effects import object_masks
from benchmark.models.protocol import VLModel
from benchmark.engine.passes import part
from benchmark.engine.plan import OUTSIDE
from benchmark.engine.run_data import RunData
from benchmark.engine.scoring import (UNCONVERGED, complexity_rows, counterfactual_rows,
                                      localisation_rows, model_metric_rows,
                                      reference_metric_rows)
from methods.base import Diagnostic, Explanation
from metrics.base import MetricKind
from benchmark.core.errors import NotApplicable


def compute_unit(state, data: RunData, method_name: str, b: int) -> dict:
    """Batch ``b`` of ``method_name`` on the model of ``state``
    (:class:`benchmark.engine.units.ModelState`), at the run's precision."""
    idx = data.batches[b]
    with inputs.precision(data.cfg):
        return score_unit(state.model, method_name, [data.records[i] for i in idx],
                          [data.ranks[i] for i in idx], b, data, state)


def _explain(model: VLModel, method, recs, wanted: List[int], seed: int,
             effects: Dict[str, Optional[dict]]) -> Explanation:
    """The method's explanation of the records at positions ``wanted`` (of all of them for a
    method whose maps read the batch), scattered back to the batch: NaN maps and diagnostics
    where none was computed."""
    sel = wanted if method.per_sample else list(range(len(recs)))
    part = [recs[i] for i in sel]
    out = method.explain(model.select(torch.tensor(sel)), inputs.images(part, model),
                         [r.question for r in part], seed=seed,
                         masks=[r.target_mask for r in part],
                         evidence_masks=[r.evidence for r in part],
                         counterfactuals=_counterfactual_inputs(part, effects))
    if len(sel) == len(recs):
        return out
    maps = torch.full((len(recs), *out.maps.shape[1:]), float("nan"))
    maps[sel] = out.maps
    diagnostics = {}
    for key, d in out.diagnostics.items():
        values = torch.full((len(recs),), float("nan"), dtype=d.values.dtype)
        values[sel] = d.values
        diagnostics[key] = Diagnostic(values, d.higher_is_better)
    valid = None if out.valid is None else torch.ones(len(recs), dtype=torch.bool)
    if valid is not None:
        valid[sel] = out.valid
    tokens = None
    if out.tokens is not None:  # as wide as the scored questions' longest: all a metric reads
        tokens = torch.full((len(recs), out.tokens.shape[1]), float("nan"))
        tokens[sel] = out.tokens
    return Explanation(maps, diagnostics, valid, tokens)


#: why the model-based metrics skip an untrained control
UNTRAINED = "an untrained control (the model-based metrics run on trained models only)"


def score_unit(model: VLModel, method_name: str, recs, ranks: List[int], b: int,
               data: RunData, state) -> dict:
    """Compute one (model, method, batch) unit: its rows and the maps of its gallery samples.
    A method's diagnostics each become a metric row (their direction is returned in
    ``directions``). ``state`` gives the model's ``info``, ``correct`` and ``effects``."""
    cfg, plan = data.cfg, data.plan
    method = configured_method(method_name, cfg)
    reason = method.applicable(model)
    count = plan.count(method_name)
    wanted = [i for i, k in enumerate(ranks) if count is None or k < count]
    model = inputs.fed(model, recs, data.records, cfg)
    out, seconds = None, {}  # seconds: where the unit's time goes (the run's profile)
    t0 = time.perf_counter()
    if reason is None and wanted:
        try:
            with part(f"{method_name}/explain"):
                out = _explain(model, method, recs, wanted, cfg.seed * 100003 + b,
                               state.effects)
        except NotApplicable as e:
            reason = str(e)
    seconds["explain"] = time.perf_counter() - t0
    invalid = _invalid(out, recs, wanted, count, method_name)
    base_rows = [{"model": model.name, "method": method_name, "sample_id": r.sample_id,
                  "question_type": r.family, "correct": state.correct.get(r.sample_id)}
                 for r in recs]
    t0 = time.perf_counter()
    rows = _map_rows(model, out, recs, base_rows, invalid, reason, data, state.effects)
    seconds["localisation and counterfactual metrics"] = time.perf_counter() - t0
    directions = {k: d.higher_is_better for k, d in (out.diagnostics if out else {}).items()}
    mod = [m for m in cfg.metrics if metrics.get(m).kind is MetricKind.MODEL]
    outside = {m: {i: OUTSIDE.format(n=plan.count(method_name, m), what=f"{method_name} × {m}")
                   for i, k in enumerate(ranks) if i not in invalid
                   and plan.count(method_name, m) is not None
                   and k >= plan.count(method_name, m)} for m in mod}
    # an untrained control's match score answers nothing: faithfulness to it is not what the
    # control is for (it shows what architecture and object saliency give to the map metrics)
    untrained = UNTRAINED if state.info.get("untrained") else None
    rows += model_metric_rows(base_rows, mod, model, inputs.images(recs, model), recs,
                              None if out is None else out.maps, invalid, reason or untrained,
                              data.scorer, cfg, seconds, directions, outside,
                              None if out is None else out.tokens,
                              {m: [i for i, k in enumerate(ranks) if plan.metrics.get(m) is None
                                   or k < plan.metrics[m]] for m in mod}, state.cache)
    for key, d in (out.diagnostics if out else {}).items():
        rows += [{**base_rows[i], "metric": key, "region": "", "value": float(d.values[i]),
                  "note": ""} if i in wanted else
                 {**base_rows[i], "metric": key, "region": "", "value": None,
                  "note": invalid[i]} for i in range(len(recs))]
    gallery = {r.sample_id: out.maps[i].tolist() for i, r in enumerate(recs)
               if out is not None and i in wanted and r.sample_id in gallery_ids(data)}
    return {"rows": rows, "gallery": gallery, "directions": directions, "seconds": seconds,
            "nonfinite": sum(1 for why in invalid.values() if why == "non-finite map"),
            "tokens": token_rows(model, out, recs, base_rows, invalid)}


def _invalid(out: Optional[Explanation], recs, wanted: List[int], count: Optional[int],
             method_name: str) -> Dict[int, str]:
    """Position → why its map is not scored: outside the plan, not converged, non-finite."""
    invalid: Dict[int, str] = {}
    for i in range(len(recs)):
        if i not in wanted:
            invalid[i] = OUTSIDE.format(n=count, what=f"{method_name}'s maps")
        elif out is not None and out.valid is not None and not bool(out.valid[i]):
            invalid[i] = UNCONVERGED
        elif out is not None and not torch.isfinite(out.maps[i]).all():
            invalid[i] = "non-finite map"
    return invalid


def _map_rows(model: VLModel, out: Optional[Explanation], recs, base_rows: List[dict],
              invalid: Dict[int, str], reason: Optional[str], data: RunData,
              effects: Dict[str, Optional[dict]]) -> List[dict]:
    """Rows of the metrics that read the map alone: localisation, reference, complexity,
    counterfactual."""
    scorers = [inputs.configured_metric(m, data.cfg) for m in data.cfg.metrics]
    loc, ref, cf, cx = ([fn for fn in scorers if fn.kind is kind] for kind in (
        MetricKind.LOCALISATION, MetricKind.REFERENCE, MetricKind.COUNTERFACTUAL,
        MetricKind.COMPLEXITY))
    cf_why = reason or next((fn.applicable(model) for fn in cf), None)
    maps_np = None if out is None else out.maps.numpy()
    rows = []
    for i, r in enumerate(recs):
        skipped = invalid.get(i) if invalid.get(i) != "non-finite map" else None
        heat = None if maps_np is None or skipped else maps_np[i]
        why = skipped or reason
        tol = data.tolerance[r.sample_id]
        rows += localisation_rows(base_rows[i], loc, heat, r, tol, why)
        rows += reference_metric_rows(base_rows[i], ref, heat, r, why)
        rows += complexity_rows(base_rows[i], cx, heat, why)
        rows += counterfactual_rows(base_rows[i], cf, heat, r, effects.get(r.sample_id), tol,
                                    skipped or cf_why)
    return rows


def _counterfactual_inputs(recs, effects: Dict[str, Optional[dict]]) -> Optional[list]:
    """Per record (object masks, Δ per object) for methods that read them, or None."""
    if not effects:
        return None
    return [None if effects.get(r.sample_id) is None else (object_masks(r),
                                                            effects[r.sample_id]["delta"])
            for r in recs]


def token_rows(model: VLModel, out: Optional[Explanation], recs, base_rows: List[dict],
               invalid: Dict[int, str]) -> List[dict]:
    """tokens.csv's rows of one unit: per scored sample and question token, its relevance
    (:attr:`~methods.base.Explanation.tokens`), for methods that give one."""
    if out is None or out.tokens is None:
        return []
    strings = model.token_strings(model.tokenize([r.question for r in recs]))
    rows = []
    for i, base in enumerate(base_rows):
        if i in invalid:
            continue
        for pos, token in enumerate(strings[i]):
            value = float(out.tokens[i, pos])
            if value == value:  # NaN: not a question token
                rows.append({"model": base["model"], "method": base["method"],
                             "sample_id": base["sample_id"], "position": pos, "token": token,
                             "relevance": value})
    return rows


def gallery_ids(data: RunData) -> set:
    """The gallery's questions: the run's first, in the dataset's order."""
    return {r.sample_id for r in data.records[:data.cfg.gallery]}
