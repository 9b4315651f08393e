"""Scores for heatmaps, one file per family, registered by name.

Localisation metrics are plain functions of one sample, ``fn(heatmap, mask, **kwargs) -> float``
(``heatmap`` on the patch grid or at image size, ``mask`` an (H, W) bool array): NaN means the
sample is excluded (empty mask), never a silent 0 or 1. ``metrics.auc`` and
``metrics.vqa_accuracy`` are shared helpers.
"""
from __future__ import annotations


from benchmark.registry import Registry

REGISTRY = Registry("metric", entry_point_group="vqa_xai_bench.metrics", package=__name__)


def register(name: str, obj=None):
    """Register a localisation function, or a :class:`metrics.base.ModelMetric` subclass (an
    instance is stored); usable as a decorator."""

    def deco(target):
        REGISTRY.register(name, target() if isinstance(target, type) else target)
        return target

    return deco(obj) if obj is not None else deco


get = REGISTRY.get
available = REGISTRY.available

from metrics.curves import auc  # noqa: E402  (after the registry: curves registers metrics)
from metrics.vqa import vqa_accuracy  # noqa: E402

__all__ = ["register", "get", "available", "auc", "vqa_accuracy", "REGISTRY"]
