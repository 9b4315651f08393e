"""One base class per kind of metric, with the metadata every metric declares on its class.

Every metric has a ``name`` (set when registered), a ``kind``, a direction
(``higher_is_better``), :meth:`Metric.applicable` (``None``, or why it cannot score a model) and
its edge cases in its docstring. The call shape is fixed per kind:

* :class:`LocalisationMetric`: ``metric(heatmap, mask, tolerance=None) -> float`` on one sample;
* :class:`ReferenceMetric`: ``metric(heatmap, reference) -> float`` on one sample, against what
  the dataset gives for it besides regions (a human attention map, annotated boxes);
* :class:`ComplexityMetric`: ``metric(heatmap) -> float`` on one sample, the map alone;
* :class:`CounterfactualMetric`: ``metric(heatmap, objects, deltas, tolerance=None) -> float``;
* :class:`ModelMetric`: ``metric(model, images, questions, maps, records, **run) -> CurveScores``
  on a batch, re-running the model; what replaces removed patches is an injected function;
* :class:`SanityMetric`: ``metric(model, method, images, questions, seed) -> list``;
* :class:`ModalityMetric`: ``metric(model, images, records, seed, **run) -> list`` of rows, of
  the model alone (no method): how much it relies on each input.

NaN means the sample is excluded (an empty mask, an undefined ratio), never a silent 0 or 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from benchmark.core.options import Configurable
from benchmark.models.protocol import VLModel


class MetricKind(str, Enum):
    """A metric's call shape (module docstring), on which the engine dispatches; the value is
    what the CSVs and the manifest write."""

    LOCALISATION = "localisation"
    REFERENCE = "reference"
    COMPLEXITY = "complexity"
    MODALITY = "modality"
    COUNTERFACTUAL = "counterfactual"
    MODEL = "model"
    SANITY = "sanity"


class Metric(Configurable):
    """What every metric declares: name, kind, direction, applicability, its options
    (:class:`~benchmark.core.options.Option` class attributes, read on an instance as the bound
    value; ``--metric-option``), and
    what the engine and the reports read from it instead of its name."""

    family = "metric"
    kind: ClassVar[MetricKind]
    higher_is_better: ClassVar[bool] = True
    #: it re-runs the model, so it needs a trained one (the untrained controls get a note)
    needs_trained_model: ClassVar[bool] = False
    #: the method that reads the answer key this metric rewards: the leaderboard's ceiling
    #: (scaled to 1), with ``random`` at 0
    oracle: ClassVar[str] = "oracle"
    #: how a sample whose map has a non-finite value counts: ``"excluded"`` (no value) or
    #: ``"miss"`` (the metric's worst value, as the pointing game's TorchRay rule has it)
    non_finite: ClassVar[str] = "excluded"

    def applicable(self, model: VLModel) -> Optional[str]:
        """``None`` when the metric can score ``model``, else the reason it cannot."""
        if self.needs_trained_model and model.info.get("untrained"):
            return "untrained control model (localisation metrics only)"
        return None

    def __repr__(self) -> str:
        return f"<{self.kind} metric {self.name!r}>"


class LocalisationMetric(Metric):
    """``metric(heatmap, mask, tolerance=None)``: the map (patch grid or image size) against an
    (H, W) bool region of one sample. ``tolerance`` (pixels) is for metrics that use it."""

    kind = MetricKind.LOCALISATION

    def __call__(self, heatmap, mask, tolerance: Optional[float] = None) -> float:
        raise NotImplementedError


class ReferenceMetric(Metric):
    """``metric(heatmap, reference)``: the map against ``record.extra[reference]`` of one sample,
    a reference the dataset provides (datasets list theirs in ``Dataset.references``; a run
    with ``--metrics all`` includes a reference metric only where its dataset provides it)."""

    kind = MetricKind.REFERENCE
    #: the key of the reference in ``Record.extra``
    reference: ClassVar[str] = ""

    def __call__(self, heatmap, reference) -> float:
        raise NotImplementedError


class ComplexityMetric(Metric):
    """``metric(heatmap)``: a property of one sample's map alone (how concentrated it is),
    neither a region nor the model read; a reading beside the others, not evidence of
    faithfulness (a map can be sparse and wrong)."""

    kind = MetricKind.COMPLEXITY

    def __call__(self, heatmap) -> float:
        raise NotImplementedError


class CounterfactualMetric(Metric):
    """``metric(heatmap, objects, deltas, tolerance=None, targets=None)``: the map against the
    model's own counterfactual effects, ``deltas[o]`` = the match logit's drop when object ``o``
    (mask ``objects[o]``) is removed from the rendered scene; ``targets[o]`` whether the object
    lies in the question's target region."""

    kind = MetricKind.COUNTERFACTUAL
    needs_trained_model = True
    oracle = "counterfactual_oracle"  # it reads the model's own Δ per object

    def __call__(self, heatmap, objects: Sequence[np.ndarray], deltas: Sequence[float],
                 tolerance: Optional[float] = None, targets=None) -> float:
        raise NotImplementedError


@dataclass
class CurveScores:
    """Per-sample scores of one batch: ``values`` (B,), optional curves (B, P) sampled at ``x``,
    and ``diagnostics``: name → (B,) values that describe how a score was obtained (e.g. how
    many distinct captions PNP-VQA's answerer read), each written as a row of its own."""

    values: np.ndarray
    x: Optional[np.ndarray] = None
    curves: Optional[np.ndarray] = None
    diagnostics: Dict[str, np.ndarray] = field(default_factory=dict)


class ModelMetric(Metric):
    """``metric(model, images, questions, maps, records, **run) -> CurveScores``.

    ``images`` (B, 3, H, W) preprocessed, ``maps`` (B, gh, gw) from a method, ``records`` the
    dataset records (answers, masks). The run's settings arrive as keywords (``steps``,
    ``substrate`` and ``start``: functions images → images, ``seed``, ``scorer`` …); each
    metric takes those it uses.
    """

    kind = MetricKind.MODEL
    needs_trained_model = True
    #: it reads the VQA head (a model without one gets a note)
    needs_answers: ClassVar[bool] = False
    #: ... or the answer a model writes (``VLModel.writes_answers``)
    reads_generated: ClassVar[bool] = False
    #: it tracks the match probability, so questions that do not match their image are excluded
    needs_match: ClassVar[bool] = False
    #: keywords it reads that do not depend on the map (:mod:`benchmark.engine.shared`: ``ends``,
    #: ``tokens``, ``encoded``): the engine computes them once per model and question
    shared: ClassVar[Tuple[str, ...]] = ()
    #: its options that the shared inputs depend on (passed to their computation, and part of
    #: what is shared)
    shared_options: ClassVar[Tuple[str, ...]] = ()

    def applicable(self, model: VLModel) -> Optional[str]:
        reason = super().applicable(model)
        if reason is None and self.needs_answers and not model.has_answer_head and not (
                self.reads_generated and model.writes_answers):
            return "the model has no VQA answer head"
        return reason

    def __call__(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                 maps: torch.Tensor, records: Sequence, **run: Any) -> CurveScores:
        raise NotImplementedError


class ModalityMetric(Metric):
    """``metric(model, images, records, seed, **run) -> list``: a property of the model on a
    question, whatever method explains it (modality.csv), on the first questions of the run
    plan's order (``--plan-count NAME=N``)."""

    kind = MetricKind.MODALITY
    needs_trained_model = True

    def __call__(self, model: VLModel, images: torch.Tensor, records: Sequence, seed: int = 0,
                 **run: Any) -> list:
        raise NotImplementedError


class SanityMetric(Metric):
    """``metric(model, method, images, questions, seed) -> list``: a model-randomisation check,
    scored on the run's first ``--sanity-samples`` questions; the direction is that of its
    per-sample statistic."""

    kind = MetricKind.SANITY
    needs_trained_model = True
    #: maps per question when the check runs alone on a model of 13 randomisation stages (the
    #: embedded models'): its weight in the progress bar's estimate
    nominal_maps: ClassVar[int] = 2
    #: its table starts with a same-model rerun under the next seed (what a deterministic method
    #: scores without any randomisation)
    rerun_row: ClassVar[bool] = False

    def __call__(self, model: VLModel, method, images: torch.Tensor, questions: Sequence[str],
                 seed: int = 0, **method_kwargs: Any) -> list:
        raise NotImplementedError
