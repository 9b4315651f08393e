"""Scores for heatmaps, one file per family, registered by name.

A metric is a subclass of one of :mod:`metrics.base`'s kinds (localisation, reference,
complexity, counterfactual, model-based, sanity), registered with ``@register("name")``; the registry holds one instance.
NaN means the sample is excluded (empty mask), never a silent 0 or 1. ``metrics.auc`` and
``metrics.vqa_accuracy`` are shared helpers.
"""
from __future__ import annotations


from typing import Any, Dict, Sequence

from benchmark.core.options import parse_specs
from benchmark.core.registry import Registry

REGISTRY = Registry("metric", entry_point_group="vqa_xai_bench.metrics", package=__name__)


def register(name: str):
    """Class decorator: register an instance of a :class:`metrics.base.Metric` subclass."""
    return REGISTRY.instance_decorator(name, check=_check_metric_class)


def _check_metric_class(cls) -> None:
    from metrics.base import Metric

    if not (isinstance(cls, type) and issubclass(cls, Metric)):
        raise TypeError(f"metric registration: register a subclass of one of metrics.base's "
                        f"kinds (LocalisationMetric, ModelMetric …), not {cls!r}")


get = REGISTRY.get
available = REGISTRY.available


def parse_options(specs: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """``["pointing_game.radius=2", ...]`` → ``{"pointing_game": {"radius": 2}}``, each value
    parsed by the metric's declared option (one-line errors otherwise)."""
    return parse_specs(specs, "metric", lambda n: get(n).options, "METRIC.OPTION=VALUE")


from metrics.curves import auc  # noqa: E402  (after the registry: curves registers metrics)
from metrics.vqa import vqa_accuracy  # noqa: E402

__all__ = ["register", "get", "available", "parse_options", "auc", "vqa_accuracy", "REGISTRY"]
