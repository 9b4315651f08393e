"""The meta-evaluation's scores (after MetaQuantus, Hedström et al., TMLR 2023): on each primary
model of the run, a copy whose every parameter is multiplied by N(1, std) noise (Quantus's
``PyTorchModel.sample``, seeded) for each of MetaQuantus's two model tests — *resilience*
(std 0.001: a model that answers the same) and *adversary* (std 2.0: a disrupted one) — and
on it every real method explained again and every per-method metric scored again, through the
same unit code as the run itself, on the first questions of the plan's order (``--plan-count
meta=N``). :mod:`benchmark.engine.meta_eval` turns these scores and the run's own into the
meta-evaluation table (``meta.csv``).
"""
from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Callable, List

import torch

import metrics
from benchmark.engine import batch_inputs as inputs
from benchmark.engine.analysis import PRIMARY
from benchmark.engine.batch_inputs import configured_method
from benchmark.engine.passes import part
from benchmark.engine.run_data import RunData
from benchmark.engine.unit_rows import score_unit
from benchmark.models.protocol import VLModel
from metrics.base import MetricKind

#: MetaQuantus's model perturbation tests: (name, std of the multiplicative N(1, std) noise)
TESTS = (("resilience", 0.001), ("adversary", 2.0))
#: the metric kinds scored per method and question (the sanity checks perturb the model
#: themselves; a modality metric belongs to the model, not to a method)
KINDS = (MetricKind.LOCALISATION, MetricKind.REFERENCE, MetricKind.COMPLEXITY,
         MetricKind.COUNTERFACTUAL, MetricKind.MODEL)
COLUMNS = ["model", "test", "method", "metric", "sample_id", "value"]


def meta_models(cfg) -> List[str]:
    """The run's models the meta-evaluation perturbs: the analysis's primary models."""
    return [m for m in PRIMARY if m in cfg.models]


def meta_metrics(cfg) -> List[str]:
    return [m for m in cfg.metrics if metrics.get(m).kind in KINDS]


def meta_methods(cfg) -> List[str]:
    """The methods whose scores the meta-evaluation compares: the real ones (no baseline, no
    bracket that reads the answer key) that the plan's sanity checks explain on randomised
    models — the adversary test's disrupted model is one; a method the plan keeps from them
    (Integrated Gradients: its adaptive estimator does not converge there, and its cost
    explodes) is kept from this too."""
    sanity = cfg.run_plan().sanity
    return [m for m in cfg.methods if configured_method(m, cfg).role == "method"
            and sanity.get(m) != 0]


def meta_weight(data: RunData, name: str) -> int:
    """The progress bar's count for the meta-evaluation of model ``name``: the maps it explains
    again (tests × real methods × questions; 0 where it does not run)."""
    count = data.plan.meta
    if count == 0 or name not in meta_models(data.cfg):
        return 0
    n = sum(1 for k in data.ranks if count is None or k < count)
    return len(TESTS) * len(meta_methods(data.cfg)) * n


def perturbed(model: VLModel, std: float, seed: int) -> VLModel:
    """A copy of ``model`` with every parameter multiplied by N(1, ``std``) noise, drawn by
    Quantus's ``PyTorchModel.sample`` from a seeded generator (the process's own random state
    is left as it was)."""
    from quantus.helpers.model.pytorch_model import PyTorchModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        module = PyTorchModel(model.module).sample(mean=1.0, std=std,
                                                   noise_type="multiplicative")
    return dataclasses.replace(model, module=module.eval())


def meta_scores(state, data: RunData, cache, effects_of: Callable) -> List[dict]:
    """The scores of every real method under each test's perturbed copy of the model of
    ``state`` (:class:`benchmark.engine.units.ModelState`), cached per test: rows of
    :data:`COLUMNS` (empty when the model is not a primary one or the plan runs none).
    ``effects_of(model, records)``: a model's Δ per object, for the counterfactual metrics."""
    cfg, count = data.cfg, data.plan.meta
    if count == 0 or state.name not in meta_models(cfg) or state.info.get("untrained") \
            or not meta_methods(cfg):
        return []
    out = []
    for t, (test, std) in enumerate(TESTS):
        rows = cache.get(state.name, "meta", test)
        if rows is None:
            with inputs.precision(cfg), part(f"model/meta-evaluation {test}"):
                rows = _test_rows(state, data, test, perturbed(
                    state.model, std, cfg.seed * 1009 + t), effects_of)
            cache.put(rows, state.name, "meta", test)
        out += rows
    return out


def _test_rows(state, data: RunData, test: str, model: VLModel,
               effects_of: Callable) -> List[dict]:
    """Every real method's scores on the perturbed ``model``, batch by batch."""
    cfg, count = data.cfg, data.plan.meta
    names = meta_metrics(cfg)
    idx = [i for i, k in enumerate(data.ranks) if count is None or k < count]
    recs = [data.records[i] for i in idx]
    wants_effects = any(metrics.get(m).kind is MetricKind.COUNTERFACTUAL for m in names)
    # the perturbed model's own Δ per object: the counterfactual metrics score a map against
    # the model it explains
    scope = SimpleNamespace(info=state.info, correct=state.correct, cache=state.cache,
                            effects=effects_of(model, recs) if wants_effects else {})
    sub = dataclasses.replace(data, cfg=dataclasses.replace(cfg, metrics=names, gallery=0))
    rows = []
    for b, chunk in enumerate(inputs.batches(len(idx), model.images_per_forward(
            cfg.batch_size))):
        batch, ranks = [recs[i] for i in chunk], [data.ranks[idx[i]] for i in chunk]
        for method in meta_methods(cfg):
            unit = score_unit(model, method, batch, ranks, b, sub, scope)
            rows += [{"model": state.name, "test": test, "method": method,
                      "metric": r["metric"], "sample_id": r["sample_id"], "value": r["value"]}
                     for r in unit["rows"] if r["metric"] in names
                     and r["region"] in ("target", "") and r["value"] is not None]
    return rows
