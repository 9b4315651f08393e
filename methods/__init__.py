"""Attribution methods, one file each, registered by name.

``methods.get(name)(model, images, questions, **kwargs)`` returns a ``(B, gh, gw)`` float32 map on
the model's patch grid (larger = more relevant); ``methods.get(name).with_options(n_steps=64)``
is a configured copy, and ``.explain(...)`` also returns the method's diagnostics. Adding a
method is one new file in this folder holding one class decorated with ``@register("name")``
that declares its ``options`` and ``needs`` (see :class:`methods.base.Attribution`);
packages outside the repository register through the ``vqa_xai_bench.methods`` entry point group.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

from benchmark.core.registry import Registry
from benchmark.core.options import Option, parse_specs
from methods.base import Attribution
from benchmark.core.errors import NotApplicable, UnknownOption

REGISTRY = Registry("method", entry_point_group="vqa_xai_bench.methods", package=__name__)


def register(name: str):
    """Class decorator: register an :class:`Attribution` subclass (an instance is stored)."""
    return REGISTRY.instance_decorator(name)


get = REGISTRY.get
available = REGISTRY.available


def parse_options(specs: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """``["integrated_gradients.n_steps=64", ...]`` → ``{"integrated_gradients": {"n_steps": 64}}``,
    each value parsed by the method's declared :class:`~benchmark.core.options.Option` (one-line
    errors: :class:`UnknownOption`, or the registry's unknown-name error)."""
    out = parse_specs(specs, "method", lambda n: get(n).options, "integrated_gradients.n_steps=64")
    for name, values in out.items():
        get(name).with_options(**values)  # values that are each valid but not together
    return out


__all__ = ["Attribution", "NotApplicable", "Option", "UnknownOption", "register", "get",
           "available", "parse_options", "REGISTRY"]
