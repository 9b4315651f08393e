"""tables.tex and tables/: booktabs tables for a paper (mean and 95% CI per cell, best in bold,
a dagger where the lead is not significant), with captions generated from the run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Set

from benchmark.outputs import write_atomic
from reports.leaderboard import HEADLINE, significantly_better
from reports.run_files import as_float, is_true, read_csv


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
    return [r for r in read_csv(out, "summary.csv")
            if r["subset"] == "all" and r["question_type"] == "all" and r["region"] in ("target", "")]


def _table(model: str, rows: List[dict], metrics: List[str], base: Set[str],
           comparisons: List[dict], caption: str, label: str) -> List[str]:
    """booktabs lines: methods × ``metrics``, ``mean [low, high]``; the best real method per
    column (by its direction) in bold, with a dagger when its lead over the second-best real
    method is not significant; baselines below a rule, never marked."""
    cell: Dict[tuple, dict] = {(r["method"], r["metric"]): r for r in rows}
    methods = sorted({r["method"] for r in rows}, key=lambda m: (m in base, m))
    marks: Dict[str, tuple] = {}
    for m in metrics:
        cands = [cell[(meth, m)] for meth in methods
                 if (meth, m) in cell and meth not in base and cell[(meth, m)]["mean"]]
        if cands:
            higher = is_true(cands[0]["higher_is_better"])
            ranked = sorted(cands, key=lambda r: float(r["mean"]), reverse=higher)
            sure = len(ranked) > 1 and significantly_better(
                comparisons, model, m, ranked[0]["method"], ranked[1]["method"],
                higher) == ranked[0]["method"]
            marks[m] = (ranked[0]["method"], sure or len(ranked) == 1)
    arrows = {m: "$\\uparrow$" if is_true(next(r["higher_is_better"] for r in rows if r["metric"] == m))
              else "$\\downarrow$" for m in metrics}
    lines = ["\\begin{table}[t]", "\\centering", "\\small", f"\\caption{{{caption}}}",
             f"\\label{{{label}}}", "\\begin{tabular}{l" + "c" * len(metrics) + "}", "\\toprule",
             "method & " + " & ".join(f"{_esc(m)} {arrows[m]}" for m in metrics) + " \\\\",
             "\\midrule"]
    first_baseline = True
    for meth in methods:
        if meth in base and first_baseline:
            lines.append("\\midrule")
            first_baseline = False
        cells = []
        for m in metrics:
            r = cell.get((meth, m))
            if r is None or not r["mean"]:
                cells.append("--")
                continue
            text = f"{float(r['mean']):.3f} [{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}]"
            if marks.get(m, ("",))[0] == meth:
                text = f"\\textbf{{{text}}}" + ("" if marks[m][1] else "$^\\dagger$")
            cells.append(text)
        lines.append(_esc(meth) + " & " + " & ".join(cells) + " \\\\")
    return lines + ["\\bottomrule", "\\end{tabular}", "\\end{table}"]


def _caption(model: str, rows: List[dict], seed, what: str) -> str:
    ns = [int(r["n"]) for r in rows if r["n"]]
    n = f"n = {min(ns)}" + (f"--{max(ns)}" if max(ns) != min(ns) else "") if ns else "n = 0"
    return (f"{_esc(model)}: {what}. Mean over the questions ({n} per cell) with its 95\\% "
            f"percentile bootstrap CI (seed {seed}). Bold: the best method per column by the "
            "metric's direction (arrow); $^\\dagger$: its lead over the second-best is not "
            "significant (paired two-sided Wilcoxon signed-rank test, Holm-corrected within the "
            "metric, $p \\geq 0.05$). Baselines below the rule are never marked.")


def table_files(out: Path) -> Dict[str, str]:
    """name → LaTeX text of every table: ``main_<model>`` (method × headline metric),
    ``all_<model>`` (every metric, appendix) and ``grounding`` (target − size-matched control)."""
    from reports.figures import slug

    rows = _load(out)
    base = baselines(out)
    comparisons = read_csv(out, "comparisons.csv")
    seed = json.loads((Path(out) / "manifest.json").read_text()).get("seed")
    files: Dict[str, str] = {}
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model]
        every = sorted({r["metric"] for r in mine})
        headline = [m for m in HEADLINE if m in every]
        if headline:
            files[f"main_{slug(model)}"] = "\n".join(_table(
                model, [r for r in mine if r["metric"] in headline], headline, base, comparisons,
                _caption(model, [r for r in mine if r["metric"] in headline], seed,
                         "headline metrics"), f"tab:main-{slug(model)}")) + "\n"
        files[f"all_{slug(model)}"] = "\n".join(_table(
            model, mine, every, base, comparisons, _caption(model, mine, seed, "every metric"),
            f"tab:all-{slug(model)}")) + "\n"
    grounding = [r for r in comparisons if r["kind"] == "region" and r["n"] not in ("", "0")]
    if grounding:
        lines = ["\\begin{table}[t]", "\\centering", "\\small",
                 "\\caption{Grounding control: the score on the question's objects minus the score "
                 "on as many other objects of matched size in the same image, paired on the "
                 f"questions that have both (mean difference with its 95\\% percentile bootstrap CI, "
                 f"seed {seed}; two-sided Wilcoxon signed-rank $p$, Holm-corrected within each "
                 "metric).}", "\\label{tab:grounding}", "\\begin{tabular}{llcccc}", "\\toprule",
                 "metric & model / method & $n$ & target $-$ control & $p$ & $p_{\\mathrm{Holm}}$ "
                 "\\\\", "\\midrule"]
        for r in grounding:
            lines.append(f"{_esc(r['metric'])} & {_esc(r['fixed'])} & {r['n']} & "
                         f"{as_float(r['mean_diff']):.3f} [{as_float(r['ci_low']):.3f}, "
                         f"{as_float(r['ci_high']):.3f}] & {as_float(r['p']):.3g} & "
                         f"{as_float(r['p_holm']):.3g} \\\\")
        files["grounding"] = "\n".join(lines + ["\\bottomrule", "\\end{tabular}",
                                                "\\end{table}"]) + "\n"
    return files


def tables(out: Path) -> str:
    """Every table of :func:`table_files` in one file, each after a comment naming its own
    file under ``tables/`` (one ``\\input`` per table)."""
    parts = ["% vqa-xai-bench tables; requires \\usepackage{booktabs}. Each table is also its own "
             "file: \\input{tables/<name>}"]
    for name, text in table_files(out).items():
        parts += [f"% --- tables/{name}.tex", text]
    return "\n".join(parts)


def write_tables(out: Path) -> Path:
    """``tables.tex`` and ``tables/<name>.tex`` (atomic writes)."""
    out = Path(out)
    (out / "tables").mkdir(exist_ok=True)
    for name, text in table_files(out).items():
        write_atomic(out / "tables" / f"{name}.tex", text)
    path = out / "tables.tex"
    write_atomic(path, tables(out))
    return path
