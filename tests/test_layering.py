"""The import layering: each layer imports only from the layers below it.

bottom: ``benchmark.registry``, ``benchmark.errors``, ``benchmark.io``-style helpers; then the
models (``benchmark.models``); then ``methods`` | ``metrics`` | ``datasets``; then the engine
(``benchmark.runner``, ``benchmark.outputs`` …); then ``benchmark.cli`` | ``reports``.
Each check imports one module in a fresh interpreter and lists what came with it.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ("benchmark.runner", "benchmark.outputs", "benchmark.counterfactual", "benchmark.cli",
          "benchmark.scoring", "benchmark.aggregate", "benchmark.batch_inputs", "benchmark.sanity_run",
          "benchmark.units", "benchmark.ray_engine", "benchmark.progress")
PLUGINS = ("methods", "metrics", "datasets")
TRAINING = ("benchmark.models.train",)


def _imported_with(module: str) -> set:
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    return set(json.loads(r.stdout.splitlines()[-1]))


def _under(names: set, prefixes) -> list:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


@pytest.mark.parametrize("module,forbidden", [
    ("benchmark.registry", ("benchmark.models",) + PLUGINS + ENGINE + ("reports",)),
    ("benchmark.errors", ("benchmark.models",) + PLUGINS + ENGINE + ("reports",)),
    ("benchmark.models", PLUGINS + ENGINE + ("reports",) + TRAINING),
    ("benchmark.models.protocol", PLUGINS + ENGINE + ("reports",) + TRAINING),
    ("methods", ENGINE + ("reports",) + TRAINING),
    ("metrics", ENGINE + ("reports",) + TRAINING),
    ("datasets", ENGINE + ("reports",) + TRAINING),
    ("benchmark.runner", ("benchmark.cli", "reports", "benchmark.ray_engine", "ray")),
    ("benchmark.units", ("benchmark.cli", "reports", "benchmark.runner", "benchmark.ray_engine")),
])
def test_a_layer_does_not_import_the_layers_above_it(module, forbidden):
    assert _under(_imported_with(module), forbidden) == []
