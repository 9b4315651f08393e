"""The import layering: each layer imports only from the layers below it.

The folders are the layers: ``benchmark.core`` (registry, errors, atomic writes, seeds); then
``benchmark.models`` (the protocol and the adapters); then ``methods`` | ``metrics`` |
``datasets``; then ``benchmark.engine`` and ``benchmark.training``; then ``benchmark.cli`` |
``reports``. Each check imports one module in a fresh interpreter and lists what came with it.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ("benchmark.engine", "benchmark.cli")
PLUGINS = ("methods", "metrics", "datasets")
TRAINING = ("benchmark.training",)


def _imported_with(module: str) -> set:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return set(json.loads(r.stdout.splitlines()[-1]))


def _under(names: set, prefixes) -> list:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("module,forbidden", [
    ("benchmark.core", ("benchmark.models",) + PLUGINS + ENGINE + ("reports",) + TRAINING),
    ("benchmark.core.registry", ("benchmark.models",) + PLUGINS + ENGINE + ("reports",)),
    ("benchmark.core.errors", ("benchmark.models",) + PLUGINS + ENGINE + ("reports",)),
    ("benchmark.core.atomic", ("benchmark.models",) + PLUGINS + ENGINE + ("reports",)),
    ("benchmark.models", PLUGINS + ENGINE + ("reports",) + TRAINING),
    ("benchmark.models.protocol", PLUGINS + ENGINE + ("reports",) + TRAINING),
    ("methods", ENGINE + ("reports",) + TRAINING),
    ("metrics", ENGINE + ("reports",) + TRAINING),
    ("datasets", ENGINE + ("reports",) + TRAINING),
    ("benchmark.engine.runner", ("benchmark.cli", "reports", "benchmark.engine.ray_engine", "ray")),
    ("benchmark.engine.units", ("benchmark.cli", "reports", "benchmark.engine.runner",
                                "benchmark.engine.ray_engine")),
])
def test_a_layer_does_not_import_the_layers_above_it(module, forbidden):
    assert _under(_imported_with(module), forbidden) == []
