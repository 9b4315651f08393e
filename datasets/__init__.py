"""Dataset loaders and the synthetic generator, registered by name.

``datasets.get(name)(**options)`` returns a :class:`datasets.base.Dataset`: a sized, indexable
collection of :class:`datasets.base.Record` with a content ``fingerprint()``. This package shadows
Hugging Face's ``datasets`` in the same environment; nothing here imports it (use a dedicated
virtual environment).
"""
from __future__ import annotations


from benchmark.core.registry import Registry

REGISTRY = Registry("dataset", entry_point_group="vqa_xai_bench.datasets", package=__name__)
register = REGISTRY.register
get = REGISTRY.get
available = REGISTRY.available

__all__ = ["register", "get", "available", "REGISTRY"]
