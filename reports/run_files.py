"""Reading a run folder's CSVs as the reports need them: rows of strings, and the two cell
parsers every report uses."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import List, Set


def read_csv(out: Path, name: str) -> List[dict]:
    """Rows of ``out/name`` as dicts of strings (empty when the file is absent)."""
    path = Path(out) / name
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def as_float(v) -> float:
    """A CSV cell as a float (NaN when empty or not a number)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def is_true(v: str) -> bool:
    """A boolean CSV cell (``higher_is_better``) as written by the run."""
    return v in ("1", "True", "true")


def diagnostics(out: Path) -> Set[str]:
    """The run's per-map diagnostics (ties, an estimator's convergence): described, never
    ranked (none for a run folder written before the manifest listed them)."""
    path = Path(out) / "manifest.json"
    return set(json.loads(path.read_text()).get("diagnostics", [])) if path.exists() else set()
