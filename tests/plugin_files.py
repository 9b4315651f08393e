"""Tiny distributions written into a temporary folder, registering plugins through the entry
point groups, as a package outside the repository would (the tests put the folder on
``PYTHONPATH``)."""
import textwrap
from pathlib import Path
from typing import Dict

#: an untrained embedded-architecture model registered from outside (runs without a checkpoint)
PLUGIN_MODEL = "untrained-tiny-plugin"


def write_distribution(root: Path, name: str, modules: Dict[str, str],
                       entry_points: Dict[str, Dict[str, str]]) -> Path:
    """Write ``modules`` (module name → source) and a dist-info named ``name`` whose
    ``entry_points`` map group → {entry name: module} into ``root``; returns ``root``."""
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{name.replace('-', '_')}-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items())
        for group, entries in entry_points.items()))
    return root


PLUGIN_SOURCE = f'''
"""Test plugin: an untrained embedded-architecture model, registered through an entry point."""
from benchmark import models


@models.register("{PLUGIN_MODEL}")
def load(**_):
    from benchmark.models.embedded import tiny_adapter
    from benchmark.models.tiny import TinyConfig, Vocabulary, build_tiny_itm
    from datasets.synthetic import vocabulary

    cfg, vocab = TinyConfig(), Vocabulary.from_record(vocabulary())
    return tiny_adapter(build_tiny_itm(cfg, vocab, seed=0), "{PLUGIN_MODEL}", cfg, vocab,
                        {{"fingerprint": "untrained"}})
'''


def write_model_plugin(root: Path) -> Path:
    """Write into ``root`` a tiny distribution that registers :data:`PLUGIN_MODEL`."""
    return write_distribution(root, "xb-test-model-plugin",
                              {"xb_test_model_plugin": PLUGIN_SOURCE},
                              {"vqa_xai_bench.models": {PLUGIN_MODEL: "xb_test_model_plugin"}})
