"""Registry discovery: a lookup imports the plugin modules of a family (those that import its
``register``) and what they import, not every module of the package."""
import json
import subprocess
import sys
from pathlib import Path

from benchmark.core.registry import plugin_modules

ROOT = Path(__file__).resolve().parents[2]


def test_plugin_modules_are_the_modules_that_import_the_familys_register():
    assert plugin_modules("datasets") == [f"datasets.loader_{n}" for n in
                                          ("clevrxai", "gqa", "synthetic", "vqahat", "vqav2")]
    assert "methods.integrated_gradients" in plugin_modules("methods")
    assert not {"methods.base", "methods.targets"} & set(plugin_modules("methods"))
    assert "benchmark.models.embedded" in plugin_modules("benchmark.models")
    assert "benchmark.models.protocol" not in plugin_modules("benchmark.models")


def test_a_lookup_of_every_family_leaves_helper_modules_unimported():
    code = ("import json, sys, datasets, methods, metrics\n"
            "from benchmark import models\n"
            "for family in (datasets, methods, metrics, models): family.available()\n"
            "print(json.dumps(sorted(sys.modules)))\n")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                                           capture_output=True, text=True).stdout))
    plugins = {m for p in ("datasets", "methods", "metrics", "benchmark.models")
               for m in plugin_modules(p)}
    assert plugins <= loaded
    # helpers no plugin imports at load time: the export tool, the panoptic reader, the
    # embedded PNP-VQA pipeline and its registry
    assert not {"datasets.export", "datasets.coco_panoptic", "benchmark.models.pnp_tiny",
                "benchmark.models.pnp_pipelines"} & loaded
