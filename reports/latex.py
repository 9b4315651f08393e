"""tables.tex: the summary as booktabs tables (mean and 95% CI per cell, best in bold)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, List, Set

from benchmark.outputs import write_atomic


def baselines(out: Path) -> Set[str]:
    """The methods a run declared baselines (``is_baseline``: set apart, never marked best).
    A run folder written before the manifest recorded it asks the method registry."""
    info = json.loads((Path(out) / "manifest.json").read_text()).get("methods")
    if info is None:
        import methods

        names = {r["method"] for r in _load(Path(out))}
        return {n for n in names if n in methods.REGISTRY and methods.get(n).is_baseline}
    return {name for name, m in info.items() if m.get("is_baseline")}


def _esc(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")


def _load(out: Path) -> List[dict]:
    with open(out / "summary.csv", newline="") as fh:
        return [r for r in csv.DictReader(fh)
                if r["subset"] == "all" and r["question_type"] == "all" and r["region"] in ("target", "")]


def tables(out: Path) -> str:
    """One table per model: methods × metrics, ``mean [low, high]``; the best real method per
    metric (direction from ``higher_is_better``) in bold; baselines listed below a rule."""
    rows = _load(out)
    base = baselines(out)
    metrics = sorted({r["metric"] for r in rows})
    parts = ["% vqa-xai-bench summary: mean [95% bootstrap CI]; requires \\usepackage{booktabs}"]
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model]
        cell: Dict[tuple, dict] = {(r["method"], r["metric"]): r for r in mine}
        methods = sorted({r["method"] for r in mine}, key=lambda m: (m in base, m))
        best = {}
        for m in metrics:
            cands = [cell[(meth, m)] for meth in methods
                     if (meth, m) in cell and meth not in base and cell[(meth, m)]["mean"]]
            if cands:
                hib = cands[0]["higher_is_better"] in ("1", "True", "true")
                best[m] = (max if hib else min)(cands, key=lambda r: float(r["mean"]))["method"]
        arrows = {m: ("$\\uparrow$" if next((r["higher_is_better"] for r in mine if r["metric"] == m), "1")
                      in ("1", "True", "true") else "$\\downarrow$") for m in metrics}
        parts += ["\\begin{table}[t]", "\\centering", "\\small",
                  f"\\caption{{{_esc(model)}: mean [95\\% CI] per method and metric}}",
                  "\\begin{tabular}{l" + "c" * len(metrics) + "}", "\\toprule",
                  "method & " + " & ".join(f"{_esc(m)} {arrows[m]}" for m in metrics) + " \\\\",
                  "\\midrule"]
        first_baseline = True
        for meth in methods:
            if meth in base and first_baseline:
                parts.append("\\midrule")
                first_baseline = False
            cells = []
            for m in metrics:
                r = cell.get((meth, m))
                if r is None or not r["mean"]:
                    cells.append("--")
                    continue
                text = f"{float(r['mean']):.3f} [{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}]"
                cells.append(f"\\textbf{{{text}}}" if best.get(m) == meth else text)
            parts.append(_esc(meth) + " & " + " & ".join(cells) + " \\\\")
        parts += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(parts)


def write_tables(out: Path) -> Path:
    path = Path(out) / "tables.tex"
    write_atomic(path, tables(Path(out)))
    return path
