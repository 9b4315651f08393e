"""The tidy tables of a run: their columns, the stable text of a cell, and the summary (mean and
bootstrap CI) of every cell of the results."""
from __future__ import annotations

import csv
import io
import math
from typing import Dict, Iterable, List, Sequence

import numpy as np

from benchmark.engine.stats import bootstrap_ci

RESULT_COLUMNS = ["model", "method", "metric", "region", "sample_id", "question_type", "correct",
                  "value", "note"]
SUMMARY_COLUMNS = ["model", "method", "metric", "region", "subset", "question_type", "n",
                   "n_excluded", "mean", "ci_low", "ci_high", "higher_is_better"]
CURVE_COLUMNS = ["model", "method", "metric", "x", "value", "n", "ci_low", "ci_high"]
SANITY_COLUMNS = ["model", "method", "test", "index", "stage", "statistic", "n", "mean",
                  "ci_low", "ci_high"]
TOKEN_COLUMNS = ["model", "method", "sample_id", "position", "token", "relevance"]
MODALITY_COLUMNS = ["model", "metric", "sample_id", "question_type", "t_shap", "players"]


def _float(v: float) -> str:
    return f"{v:.6g}" if math.isfinite(v) else ""


#: the exact types of most cells, formatted without :func:`fmt`'s checks (millions per run)
_FAST = {str: str, float: _float, int: str}


def fmt(v) -> str:
    """Stable text for CSV cells: floats with 6 significant digits, NaN/None as empty."""
    fast = _FAST.get(type(v))
    if fast is not None:
        return fast(v)
    if v is None or v == "":
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    return str(v)


def csv_text(rows: Iterable[dict], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([fmt(r.get(c, "")) for c in columns])
    return buf.getvalue()


def _value(r: dict) -> float:
    v = r.get("value")
    return float("nan") if v in (None, "") else float(v)


def _groups(rows: List[dict]) -> Dict[tuple, List[dict]]:
    groups: Dict[tuple, List[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["method"], r["metric"], r["region"]), []).append(r)
    return groups


def summarise(rows: List[dict], seed: int, higher_is_better: Dict[str, bool]) -> List[dict]:
    """Mean and 95% bootstrap CI per (model, method, metric, region) × subset × question type.

    ``subset`` is ``all`` or ``correct`` (questions the model answered correctly);
    ``question_type`` is ``all`` or one family. Excluded samples (empty value) are counted.
    """
    out = []
    for key, rs in sorted(_groups(rows).items()):
        families = ["all"] + sorted({r["question_type"] for r in rs})
        for subset in ("all", "correct"):
            sub = rs if subset == "all" else [r for r in rs if (r.get("correct") or 0) >= 1.0]
            for fam in families:
                part = sub if fam == "all" else [r for r in sub if r["question_type"] == fam]
                vals = [_value(r) for r in part]
                finite = [v for v in vals if np.isfinite(v)]
                mean, lo, hi = bootstrap_ci(finite, seed=seed)
                out.append(dict(zip(SUMMARY_COLUMNS, (
                    *key, subset, fam, len(finite), len(part) - len(finite), mean, lo, hi,
                    higher_is_better.get(key[2], True)))))
    return out
