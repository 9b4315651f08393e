"""A small name → object registry shared by models, methods, metrics and datasets.

Each plugin family (``methods``, ``metrics``, ``datasets``, ``benchmark.models``) owns one
:class:`Registry`, and discovers its plugins by one rule: the modules of its package that import
the family's ``register`` (``from methods import register``) and whose names do not start with
``_``, imported on the first lookup; helper modules (a family's ``base.py``, file readers) are
imported only by the plugins that use them. Registration is decoupled from implementation: a
module defines a function or class and decorates it with ``@register("name")``. Packages outside
the repository add entries through the entry point group named by ``entry_point_group``.
"""
from __future__ import annotations

import importlib
import pkgutil
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from benchmark.core.errors import UnknownNameError


def plugin_modules(package: str) -> List[str]:
    """The modules of ``package`` that import its ``register`` (read from their source, so
    that finding them imports nothing), names not starting with ``_``, in name order."""
    pattern = re.compile(rf"^from {re.escape(package)} import (\([^)]*|[^\n]*)\bregister\b",
                         re.MULTILINE)
    found = []
    for folder in importlib.import_module(package).__path__:
        for mod in pkgutil.iter_modules([folder]):
            source = Path(folder, f"{mod.name}.py")
            if not mod.name.startswith("_") and source.is_file() and \
                    pattern.search(source.read_text(encoding="utf-8")):
                found.append(f"{package}.{mod.name}")
    return sorted(found)


class Registry:
    """Maps names to objects for one plugin family.

    Args:
        kind: human name of the family, used in error messages ("method", "metric" ...).
        entry_point_group: optional ``importlib.metadata`` entry point group scanned lazily, so
            external distributions can register without the repository knowing them.
        package: the family's package; its built-in plugins are its modules that import the
            family's ``register`` and whose names do not start with ``_``, imported (they
            register themselves) on the first lookup rather
            than with the package, so that importing one module of a family never imports every
            plugin and what they import. The same rule holds for every family.
    """

    def __init__(self, kind: str, entry_point_group: Optional[str] = None,
                 package: Optional[str] = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.package = package
        self._items: Dict[str, Any] = {}
        self._entry_points_loaded = False

    def register(self, name: str, obj: Any = None) -> Any:
        """Register ``obj`` under ``name``; usable as ``@registry.register("name")``."""

        def _add(target: Any) -> Any:
            if name in self._items and self._items[name] is not target:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = target
            return target

        return _add(obj) if obj is not None else _add

    def instance_decorator(self, name: str, check: Optional[Callable[[Any], None]] = None):
        """Class decorator: register one instance of the class (or the object itself, if it is
        not a class) under ``name``, with its ``name`` attribute set; ``check(target)`` may
        raise first."""

        def deco(target):
            if check is not None:
                check(target)
            obj = target() if isinstance(target, type) else target
            obj.name = name
            self.register(name, obj)
            return target

        return deco

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        if self.package:
            for name in plugin_modules(self.package):
                importlib.import_module(name)
        for ep in metadata.entry_points(group=self.entry_point_group or ""):
            if ep.name not in self._items:
                # Loading the module runs its @register decorators; a bare object is registered here.
                loaded = ep.load()
                if ep.name not in self._items:
                    self._items[ep.name] = loaded

    def get(self, name: str) -> Any:
        """Return the object registered as ``name`` or raise :class:`UnknownNameError`."""
        self._load_entry_points()
        if name not in self._items:
            known = ", ".join(self.available()) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}")
        return self._items[name]

    def available(self) -> List[str]:
        """Sorted names of every registered entry."""
        self._load_entry_points()
        return sorted(self._items)

    def resolve(self, spec: str | Iterable[str]) -> List[str]:
        """Turn ``"all"``, ``"a,b"`` or an iterable of names into validated names, in order."""
        names = spec.split(",") if isinstance(spec, str) else list(spec)
        names = [n.strip() for n in names if n.strip()]
        if names == ["all"]:
            return self.available()
        for n in names:
            self.get(n)
        return names

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._items


def make_api(registry: Registry) -> tuple[Callable, Callable, Callable]:
    """The module-level ``register, get, available`` trio for a family."""
    return registry.register, registry.get, registry.available
