"""Attribution methods, one file each, registered by name.

``methods.get(name)(model, images, questions, **kwargs)`` returns a ``(B, gh, gw)`` float32 map on
the model's patch grid (larger = more relevant). Adding a method is one new file in this folder
holding one class decorated with ``@register("name")`` (see :class:`methods.base.Attribution`);
packages outside the repository register through the ``vqa_xai_bench.methods`` entry point group.
"""
from __future__ import annotations

import importlib
import pkgutil

from benchmark.registry import Registry
from methods.base import Attribution, NotApplicable

REGISTRY = Registry("method", entry_point_group="vqa_xai_bench.methods")


def register(name: str):
    """Class decorator: register an :class:`Attribution` subclass (an instance is stored)."""

    def deco(cls):
        obj = cls() if isinstance(cls, type) else cls
        obj.name = name
        REGISTRY.register(name, obj)
        return cls

    return deco


get = REGISTRY.get
available = REGISTRY.available

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_") and _mod.name != "base":
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["Attribution", "NotApplicable", "register", "get", "available", "REGISTRY"]
