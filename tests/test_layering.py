"""The import layering holds at run time: no import, at module level or inside a function,
reaches a layer above its own (``tests/fixtures/import_graph.py`` records the graph and names the
layers) — after a registry lookup of every family, and through one whole run.
"""
import pytest

from tests.fixtures.import_graph import layer_of, recorded_edges, violations

LOOKUP = """
from benchmark import models
import datasets, methods, metrics
for family in (models, methods, metrics, datasets):
    family.available()
for name in ("blip-itm-tiny-plain", "difnet-itm-tiny-plain", "blip-itm-tiny@init"):
    models.load(name)
datasets.get("synthetic")(split="test", size=2)[0]
"""


def test_the_checker_sees_an_arrow_inside_a_function():
    edges = recorded_edges("import benchmark.core.registry as r\n"
                           "exec('def f():\\n    import methods\\nf()', vars(r))")
    assert violations(edges) == ["benchmark.core.registry -> methods"]


def test_a_registry_lookup_of_every_family_stays_in_its_layer():
    edges = recorded_edges(LOOKUP)
    assert ("benchmark.models.embedded", "benchmark.models.tiny") in edges  # it did record
    assert violations(edges) == []


def test_a_whole_run_stays_in_its_layers(layering_run):
    edges, _ = layering_run
    assert any(t.startswith("benchmark.engine.") for _, t in edges)
    assert violations(edges) == []


@pytest.mark.parametrize("module,layer", [("benchmark.core.maps", 0), ("benchmark.models", 1),
                                          ("methods._capture", 2), ("benchmark.cli.main", 5),
                                          ("benchmark.__main__", 6), ("torch", None)])
def test_layers_are_read_from_the_folders(module, layer):
    found = layer_of(module)
    assert (found and found[0]) == layer
