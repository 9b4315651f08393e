"""The model side of a run: per model its manifest entry, its answer to every question, its
Δ per object, its modality shares and the meta-evaluation's scores on its perturbed copies
(:class:`ModelState`), each computed once and cached, and the loading options of the run's
models. Every unit (:mod:`benchmark.engine.unit_rows`, :mod:`benchmark.engine.sanity_run`)
reads only the run's :class:`~benchmark.engine.run_data.RunData` and its model's state and goes
into the unit cache (:mod:`benchmark.engine.cache`); the local runner and the Ray engine compute
the same units and merge them the same way, hence the same bytes.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import methods
import metrics
from benchmark.engine import batch_inputs as inputs
from benchmark import models
from benchmark.engine.aggregate import effect_summary
from benchmark.engine.config import RunConfig
from benchmark.engine.meta_run import meta_scores
from benchmark.engine.object_effects import can_rerender, object_effects, semantic_stream
from benchmark.core.errors import InputError
from metrics.base import MetricKind
from benchmark.models.memory import bound
from benchmark.models.protocol import VLModel
from benchmark.engine.passes import part
from benchmark.engine.run_data import RunData, unit_key
from datasets.segmentation_stream import absent_side_inputs
from metrics.perturbation import SUBSTRATES


class ModelState:
    """One model of a run with what its units read, each taken from ``cache`` or computed and
    put there: its manifest entry (``info``), its answer to every question (``predictions``,
    and ``correct`` as scored), and its Δ per object (``effects``; empty when no counterfactual
    metric or method asks). The model itself is loaded (``load()``) only when something has to
    be computed, so merging a run whose units are all cached loads none."""

    def __init__(self, name: str, data: RunData, cache, load: Callable[[], VLModel]) -> None:
        self.name, self._load, self._model, self._cfg = name, load, None, data.cfg
        self.cache = cache  # what a unit memoises across models (PNP-VQA's answers)
        cfg, records = data.cfg, data.records
        self.info = cache.get(name, "info")
        if self.info is None:
            self.info = dict(self.model.info, images_per_forward=self.model.max_batch_images)
            if self.model.side_input_classes("segmentation") is not None:
                self.info["segmentation"] = cfg.segmentation
            cache.put(self.info, name, "info")
        self.predictions = cache.get(name, "predictions")
        if self.predictions is None:
            with inputs.precision(cfg), part("model/predictions"):
                self.predictions = _predict(self.model, records, cfg)
            cache.put(self.predictions, name, "predictions")
        self.effects: Dict[str, Optional[dict]] = {}
        if _wants_effects(cfg, self.info, records):
            for b, idx in enumerate(data.batches):
                effects = cache.get(name, "effects", unit_key(b))
                if effects is None:
                    with inputs.precision(cfg), part("model/effects"):
                        effects = _effects(self.model, [records[i] for i in idx], records, cfg)
                    cache.put(effects, name, "effects", unit_key(b))
                self.effects.update(effects)
        self.correct = {r.sample_id: data.scorer(self.predictions[r.sample_id], r.answers)
                        if self.predictions[r.sample_id] else None for r in records}
        #: modality.csv's rows of this model (:class:`metrics.base.ModalityMetric`)
        self.modality: List[dict] = [] if self.info.get("untrained") else \
            _modality(self, data, cache)
        #: every real method's scores on perturbed copies of the model (meta-evaluation)
        self.meta: List[dict] = meta_scores(self, data, cache, lambda model, recs: _effects(
            model, recs, data.records, cfg))

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


def model_state(name: str, data: RunData, cache) -> ModelState:
    """:class:`ModelState` of the registered model ``name`` on the run's device."""
    return ModelState(name, data, cache, lambda: models.load(
        name, device=data.cfg.device, **model_options(name, data.cfg)))


def _effects(model: VLModel, recs, records, cfg: RunConfig) -> Dict[str, Optional[dict]]:
    """The model's Δ per object for a batch (:mod:`benchmark.engine.object_effects`)."""
    own = lambda rs: inputs.segmentation(model, rs, records, cfg.segmentation, cfg.seed)  # noqa: E731
    return object_effects(model, recs, model.preprocess,
                          semantic_stream(model, cfg.segmentation, own))


def _predict(model: VLModel, records, cfg: RunConfig) -> Dict[str, str]:
    """The model's answer to every question (empty strings for a model that gives none)."""
    if not model.answers_questions:
        return {r.sample_id: "" for r in records}
    out = {}
    for idx in inputs.batches(len(records), model.images_per_forward(cfg.batch_size)):
        recs = [records[i] for i in idx]
        fed = inputs.fed(model, recs, records, cfg)
        preds = fed.predict_answers(inputs.images(recs, model), [r.question for r in recs])
        out.update({r.sample_id: p for r, p in zip(recs, preds)})
    return out


def _modality(state: "ModelState", data: RunData, cache) -> List[dict]:
    """The rows of the run's modality metrics, per batch on its questions of the run plan
    (each batch cached)."""
    cfg, out = data.cfg, []
    for name in (m for m in cfg.metrics if metrics.get(m).kind is MetricKind.MODALITY):
        fn, count = inputs.configured_metric(name, cfg), data.plan.metrics.get(name)
        for b, idx in enumerate(data.batches):
            rows = cache.get(state.name, name, unit_key(b))
            if rows is None:
                recs = [data.records[i] for i in idx if count is None or data.ranks[i] < count]
                with inputs.precision(cfg), part(f"model/{name}"):
                    rows = [] if not recs else fn(
                        inputs.fed(state.model, recs, data.records, cfg),
                        inputs.images(recs, state.model), recs, seed=cfg.seed,
                        substrate=SUBSTRATES[cfg.substrate],
                        absent=absent_side_inputs(state.model, cfg.segmentation,
                                                  cfg.side_inputs == "consistent"))
                cache.put(rows, state.name, name, unit_key(b))
            out += [{**r, "metric": name} for r in rows]
    return out


def _wants_effects(cfg: RunConfig, info: dict, records) -> bool:
    """Whether the run needs the model's Δ per object (a counterfactual metric or method asked
    for, a trained model, re-renderable data)."""
    asked = any(metrics.get(m).kind is MetricKind.COUNTERFACTUAL for m in cfg.metrics) \
        or any("counterfactuals" in methods.get(m).needs for m in cfg.methods)
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
    options.update(cfg.model_options.get(name.partition(":")[0], {}))  # every PATH it loads
    options.update(cfg.model_options.get(name, {}))
    if cfg.fusion and name in EMBEDDED and EMBEDDED[name].config.fused:
        options["model_overrides"] = {"fusion": {**EMBEDDED[name].config.fusion, **cfg.fusion}}
    return options
