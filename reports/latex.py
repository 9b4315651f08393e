"""tables.tex and tables/: booktabs tables for a paper (mean and 95% CI per cell, best in bold,
a dagger where the lead is not significant), with captions generated from the run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Set

from benchmark.core.atomic import write_atomic
from reports.leaderboard import HEADLINE, significantly_better
from reports.run_files import as_float, diagnostics, is_true, read_csv


def baselines(out: Path) -> Set[str]:
    """The methods a run declared baselines (``is_baseline``: set apart, never marked best).
    A run folder written before the manifest recorded it asks the method registry."""
    info = json.loads((Path(out) / "manifest.json").read_text()).get("methods")
    if info is None:
        import methods

        names = {r["method"] for r in _load(Path(out))}
        return {n for n in names if n in methods.REGISTRY and methods.get(n).is_baseline}
    return {name for name, m in info.items() if m.get("is_baseline")}


def exploratory(out: Path) -> Set[str]:
    """The run's exploratory methods (a method the analysis did not name: shown and tested,
    never ranked nor marked best)."""
    info = json.loads((Path(out) / "manifest.json").read_text()).get("methods") or {}
    return {name for name, m in info.items() if m.get("role") == "exploratory"}


def _esc(text: str) -> str:
    return text.replace("\\", r"\textbackslash{}").replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")


def _load(out: Path, family: bool = False) -> List[dict]:
    """summary.csv's rows on all questions, target region: overall, or per question family."""
    return [r for r in read_csv(out, "summary.csv")
            if r["subset"] == "all" and (r["question_type"] != "all") == family
            and r["region"] in ("target", "")]


def _ci(r: dict) -> str:
    return f"{float(r['mean']):.3f} [{float(r['ci_low']):.3f}, {float(r['ci_high']):.3f}]"


def _n(ns: List[int]) -> str:
    return (f"n = {min(ns)}" + (f"--{max(ns)}" if max(ns) != min(ns) else "")) if ns else "n = 0"


def _tabular(columns: str, header: List[str], body: List[str], caption: str,
             label: str) -> str:
    # scaled to the text width when wider (a row of means with CIs seldom fits a column)
    return "\n".join(["\\begin{table}[t]", "\\centering", "\\small", f"\\caption{{{caption}}}",
                      f"\\label{{{label}}}", "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth"
                      "\\else\\width\\fi}{!}{%", f"\\begin{{tabular}}{{{columns}}}", "\\toprule",
                      " & ".join(header) + " \\\\", "\\midrule", *body, "\\bottomrule",
                      "\\end{tabular}}", "\\end{table}"]) + "\n"


def _ranked(cands: List[dict]) -> List[dict]:
    """Rows of one metric, best mean first by the metric's direction."""
    higher = is_true(cands[0]["higher_is_better"]) if cands else True
    return sorted(cands, key=lambda r: float(r["mean"]), reverse=higher)


def _arrow(rows: List[dict], metric: str) -> str:
    up = is_true(next(r["higher_is_better"] for r in rows if r["metric"] == metric))
    return "$\\uparrow$" if up else "$\\downarrow$"


def _methods(rows: List[dict], base: Set[str]) -> List[str]:
    """Real methods first, then the baselines (each group alphabetical)."""
    return sorted({r["method"] for r in rows}, key=lambda m: (m in base, m))


def _body(methods: List[str], base: Set[str], cells) -> List[str]:
    """One line per method (``cells(method)`` gives its cells), a rule above the baselines."""
    lines = []
    for i, meth in enumerate(methods):
        if meth in base and (i == 0 or methods[i - 1] not in base):
            lines.append("\\midrule")
        lines.append(_esc(meth) + " & " + " & ".join(cells(meth)) + " \\\\")
    return lines


def _marks(cell: Dict[tuple, dict], methods: List[str], metrics: List[str], base: Set[str],
           comparisons: List[dict], model: str) -> Dict[str, tuple]:
    """metric → (the best real methods by its direction, whether the lead is significant);
    every method tied with the best is marked, and a tie is never a significant lead. A metric
    with one real method (a method's own diagnostic) has no best."""
    marks: Dict[str, tuple] = {}
    for m in metrics:
        ranked = _ranked([cell[(meth, m)] for meth in methods
                          if (meth, m) in cell and meth not in base and cell[(meth, m)]["mean"]])
        if len(ranked) > 1:
            top = {r["method"] for r in ranked if float(r["mean"]) == float(ranked[0]["mean"])}
            sure = (len(top) == 1 and significantly_better(
                comparisons, model, m, ranked[0]["method"], ranked[1]["method"],
                is_true(ranked[0]["higher_is_better"])) == ranked[0]["method"])
            marks[m] = (top, sure)
    return marks


def _marked(r: Optional[dict], meth: str, mark: tuple) -> str:
    """``mean [low, high]``, bold (and a dagger when not significant) for a marked method."""
    if r is None or not r["mean"]:
        return "--"
    if meth in mark[0]:
        return f"\\textbf{{{_ci(r)}}}" + ("" if mark[1] else "$^\\dagger$")
    return _ci(r)


def _table(model: str, rows: List[dict], metrics: List[str], base: Set[str],
           comparisons: List[dict], caption: str, label: str) -> str:
    """Methods × ``metrics``, ``mean [low, high]``; the best real method per column (by its
    direction) in bold, with a dagger when its lead over the second-best real method is not
    significant; baselines below a rule, never marked."""
    cell: Dict[tuple, dict] = {(r["method"], r["metric"]): r for r in rows}
    methods = _methods(rows, base)
    marks = _marks(cell, methods, metrics, base, comparisons, model)

    def cells(meth: str) -> List[str]:
        return [_marked(cell.get((meth, m)), meth, marks.get(m, ((), True))) for m in metrics]

    header = ["method"] + [f"{_esc(m)} {_arrow(rows, m)}" for m in metrics]
    return _tabular("l" + "c" * len(metrics), header, _body(methods, base, cells), caption, label)


def _long_table(model: str, rows: List[dict], metrics: List[str], base: Set[str],
                comparisons: List[dict], caption: str, label: str) -> str:
    """Appendix, every metric: one block of methods per metric (mean [low, high] and n), marked
    as in :func:`_table`; a ``longtable`` that breaks across pages."""
    cell: Dict[tuple, dict] = {(r["method"], r["metric"]): r for r in rows}
    methods = _methods(rows, base)
    marks = _marks(cell, methods, metrics, base, comparisons, model)
    body: List[str] = []
    for m in metrics:
        mine = [meth for meth in methods if (meth, m) in cell]
        body += ([] if not body else ["\\midrule"]) + [
            f"\\multicolumn{{3}}{{l}}{{\\emph{{{_esc(m)}}} {_arrow(rows, m)}}} \\\\"]
        body += _body(mine, base, lambda meth, m=m: [
            _marked(cell[(meth, m)], meth, marks.get(m, ((), True))), cell[(meth, m)]["n"]])
    return _longtable("lcc", ["method", "mean [95\\% CI]", "$n$"], body, caption, label)


def _longtable(columns: str, header: List[str], body: List[str], caption: str,
               label: str) -> str:
    """A ``longtable`` (appendix tables that run over pages), its header repeated per page."""
    head = " & ".join(header) + " \\\\"
    return "\n".join(["\\begingroup\\small", f"\\begin{{longtable}}{{{columns}}}",
                      f"\\caption{{{caption}}}\\label{{{label}}} \\\\", "\\toprule", head,
                      "\\midrule", "\\endfirsthead", "\\toprule", head, "\\midrule", "\\endhead",
                      "\\bottomrule", "\\endlastfoot", *body, "\\end{longtable}",
                      "\\endgroup"]) + "\n"


def _caption(model: str, rows: List[dict], seed, what: str) -> str:
    return (f"{_esc(model)}: {what}. Mean over the questions "
            f"({_n([int(r['n']) for r in rows if r['n']])} per cell) with its 95\\% "
            f"percentile bootstrap CI (seed {seed}). Bold: the best method per column by the "
            "metric's direction (arrow); $^\\dagger$: its lead over the second-best is not "
            "significant (two-sided paired sign-flip permutation test of the mean difference, "
            "Holm-corrected over the real methods within the "
            "metric, $p \\geq 0.05$). Baselines below the rule are never marked.")


def _family_table(model: str, rows: List[dict], metrics: List[str], base: Set[str],
                  seed) -> str:
    """Appendix: per headline metric a block of methods × question families (means); the best
    real method per (metric, family) in bold."""
    families = sorted({r["question_type"] for r in rows})
    cell = {(r["metric"], r["method"], r["question_type"]): r for r in rows if r["mean"]}
    body = []
    for m in metrics:
        mine = [r for r in rows if r["metric"] == m]
        best = {f: (_ranked([r for r in mine if r["question_type"] == f and r["mean"]
                             and r["method"] not in base]) or [None])[0] for f in families}
        body += ([] if not body else ["\\midrule"]) + [
            f"\\multicolumn{{{len(families) + 1}}}{{l}}{{\\emph{{{_esc(m)}}} {_arrow(rows, m)}}}"
            " \\\\"]

        def cells(meth: str, m=m, best=best) -> List[str]:
            out = []
            for f in families:
                r = cell.get((m, meth, f))
                text = "--" if r is None else f"{float(r['mean']):.3f}"
                top = (meth not in base and r is not None and best[f] is not None
                       and r["mean"] == best[f]["mean"])
                out.append(f"\\textbf{{{text}}}" if top else text)
            return out

        body += _body(_methods(mine, base), base, cells)
    caption = (f"{_esc(model)}: headline metrics per question family. Mean over the family's "
               f"questions ({_n([int(r['n']) for r in rows if r['n']])} per cell); each cell's 95\\% "
               f"percentile bootstrap CI (seed {seed}) is in summary.csv. Bold: the best real "
               "method per family by the metric's direction (arrow), not tested for significance. "
               "Baselines below each rule are never marked.")
    return _longtable("l" + "c" * len(families), ["method"] + [_esc(f) for f in families], body,
                      caption, f"tab:family-{_label(model)}")


def _grounding_table(rows: List[dict], seed) -> str:
    body = [f"{_esc(r['metric'])} & {_esc(r['fixed'])} & {r['n']} & "
            f"{as_float(r['mean_diff']):.3f} [{as_float(r['ci_low']):.3f}, "
            f"{as_float(r['ci_high']):.3f}] & {as_float(r['p']):.3g} & "
            f"{as_float(r['p_holm']):.3g} \\\\" for r in rows]
    caption = ("Grounding control: the score on the question's objects minus the score on as many "
               "other objects of matched size in the same image, paired on the questions that have "
               "both (mean difference with its 95\\% percentile bootstrap CI, "
               f"seed {seed}; two-sided sign-flip permutation $p$ of the mean, Holm-corrected over "
               "the real methods within each model and "
               "metric).")
    return _longtable("llcccc", ["metric", "model / method", "$n$", "target $-$ control", "$p$",
                                 "$p_{\\mathrm{Holm}}$"], body, caption, "tab:grounding")


def _label(model: str) -> str:
    from reports.figures import slug

    return slug(model)


def table_files(out: Path) -> Dict[str, str]:
    """name → LaTeX text of every table: ``main_<model>`` (method × headline metric), and the
    appendix: ``all_<model>`` (every metric), ``family_<model>`` (headline metrics per question
    family), ``sanity_<model>``, ``diagnostics_<model>`` (the maps' ties and convergence) and
    ``grounding`` (target − size-matched control)."""
    from reports.latex_appendix import diagnostics_table, sanity_table  # it reads our helpers

    rows, by_family = _load(out), _load(out, family=True)
    sanity = read_csv(out, "sanity.csv")
    base = baselines(out) | exploratory(out)  # neither is marked best
    comparisons = read_csv(out, "comparisons.csv")
    seed = json.loads((Path(out) / "manifest.json").read_text()).get("seed")
    files: Dict[str, str] = {}
    described = diagnostics(out)
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model and r["metric"] not in described]
        every = sorted({r["metric"] for r in mine})
        headline = [m for m in HEADLINE if m in every]
        top = [r for r in mine if r["metric"] in headline]
        if headline:
            files[f"main_{_label(model)}"] = _table(
                model, top, headline, base, comparisons,
                _caption(model, top, seed, "headline metrics"), f"tab:main-{_label(model)}")
        files[f"all_{_label(model)}"] = _long_table(
            model, mine, every, base, comparisons,
            _caption(model, mine, seed, "every metric").replace("per column", "per metric"),
            f"tab:all-{_label(model)}")
        fam = [r for r in by_family if r["model"] == model and r["metric"] in headline]
        if fam:
            files[f"family_{_label(model)}"] = _family_table(
                model, fam, [m for m in headline if any(r["metric"] == m for r in fam)], base, seed)
        checks = sanity_table(model, [r for r in sanity if r["model"] == model], base, seed)
        if checks:
            files[f"sanity_{_label(model)}"] = checks
        about = [r for r in rows if r["model"] == model and r["metric"] in described]
        if about:
            files[f"diagnostics_{_label(model)}"] = diagnostics_table(model, about, base, seed)
    grounding = [r for r in comparisons if r["kind"] == "region" and r["n"] not in ("", "0")]
    if grounding:
        files["grounding"] = _grounding_table(grounding, seed)
    return files


def tables(out: Path) -> str:
    """Every table of :func:`table_files` in one file, each after a comment naming its own
    file under ``tables/`` (one ``\\input`` per table)."""
    parts = ["% vqa-xai-bench tables; requires \\usepackage{booktabs}, graphicx and longtable. "
             "Each table is also its own file: \\input{tables/<name>}"]
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
