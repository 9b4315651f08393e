"""Records the import graph a scenario actually executes, and holds it against the layers.

The folders are the layers, bottom to top: ``benchmark.core``; ``benchmark.models``;
``methods`` | ``metrics`` | ``datasets`` (side by side: none imports another); ``benchmark.engine``
| ``benchmark.training`` (side by side); ``reports``; ``benchmark.cli``; the ``benchmark``
package itself and ``tools``. A scenario runs in a fresh interpreter whose ``__import__`` records
every import statement executed (importer → imported module), at module level or inside a
function.
"""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = (("benchmark.core",), ("benchmark.models",), ("methods", "metrics", "datasets"),
          ("benchmark.engine", "benchmark.training"), ("reports",), ("benchmark.cli",),
          ("benchmark", "tools"))

RECORDER = '''
import builtins, importlib.util, json, sys
edges, real = set(), builtins.__import__

def recording(name, globals=None, locals=None, fromlist=(), level=0):
    module = real(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__name__")
    if importer and importer != "__main__":
        target = importlib.util.resolve_name("." * level + name, globals.get("__package__")) \\
            if level else name
        subs = [f"{target}.{item}" for item in fromlist or () if f"{target}.{item}" in sys.modules]
        edges.update((importer, s) for s in subs)
        if len(subs) < len(fromlist or ()) or not fromlist:
            edges.add((importer, target))
    return module

builtins.__import__ = recording
exec(compile(sys.argv[1], "<scenario>", "exec"), {"__name__": "__main__"})
print(json.dumps(sorted(edges)))
'''


def layer_of(module: str):
    """(rank, family) of a project module by its longest matching prefix; None outside."""
    best = None
    for rank, families in enumerate(LAYERS):
        for family in families:
            if module == family or module.startswith(family + "."):
                if best is None or len(family) > len(best[1]):
                    best = (rank, family)
    return best


def violations(edges) -> list:
    """The arrows that reach up, or sideways into another family of the same layer."""
    bad = []
    for importer, target in edges:
        a, b = layer_of(importer), layer_of(target)
        if a and b and a[1] != b[1] and b[0] >= a[0]:
            bad.append(f"{importer} -> {target}")
    return sorted(set(bad))


def recorded_edges(scenario: str, cwd: Path = ROOT) -> list:
    r = subprocess.run([sys.executable, "-c", RECORDER, scenario], cwd=cwd, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return [tuple(e) for e in json.loads(r.stdout.splitlines()[-1])]
