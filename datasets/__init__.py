"""Dataset loaders and the synthetic generator, registered by name.

``datasets.get(name)(**options)`` returns a :class:`datasets.base.Dataset`: a sized, indexable
collection of :class:`datasets.base.Record` with a content ``fingerprint()``. This package shadows
Hugging Face's ``datasets`` in the same environment; nothing here imports it (use a dedicated
virtual environment).
"""
from __future__ import annotations


from typing import Any, Dict, Sequence

from benchmark.core.options import parse_specs
from benchmark.core.registry import Registry

REGISTRY = Registry("dataset", entry_point_group="vqa_xai_bench.datasets", package=__name__)
register = REGISTRY.register
get = REGISTRY.get
available = REGISTRY.available


def parse_options(dataset: str, specs: Sequence[str]) -> Dict[str, Any]:
    """``["size=50", ...]`` → ``{"size": 50}`` for ``dataset``, each value parsed by the
    dataset's declared option (one-line errors otherwise)."""
    return parse_specs(specs, "dataset", lambda _: get(dataset).options, "OPTION=VALUE",
                       named=False).get("", {})


__all__ = ["register", "get", "available", "parse_options", "REGISTRY"]
