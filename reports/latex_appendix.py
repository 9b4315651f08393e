"""The appendix tables of tables.tex: the sanity checks and the maps' diagnostics, per model
(described, never marked best)."""
from __future__ import annotations

from typing import Dict, List, Optional, Set

from reports.latex import _body, _ci, _esc, _label, _methods, _n, _tabular


#: the columns of the sanity table: (test, statistic, stage, header)
SANITY_COLUMNS = (("sanity_mprt", "spearman", "rerun", "rerun $\\rho$"),
                  ("sanity_mprt", "spearman", "full", "MPRT $\\rho$ $\\downarrow$"),
                  ("sanity_mprt", "abs_spearman", "full", "MPRT $|\\rho|$ $\\downarrow$"),
                  ("sanity_mprt", "spearman_abs_maps", "full",
                   "MPRT $\\rho(|\\cdot|)$ $\\downarrow$"),
                  ("random_logit", "spearman", "only", "random logit $\\rho$ $\\downarrow$"),
                  ("question_swap", "spearman", "only", "question swap $\\rho$ $\\downarrow$"),
                  ("smprt", "spearman", "only", "sMPRT $\\rho$ $\\downarrow$"),
                  ("emprt", "relative_complexity_change", "only",
                   "eMPRT $\\Delta$ $\\uparrow$"))


def sanity_table(model: str, rows: List[dict], base: Set[str], seed) -> Optional[str]:
    """Appendix: per method the sanity statistics — the cascading randomisation test's rerun
    and fully randomised stages, and the single-stage tests — as mean [95% CI]."""
    full: Dict[str, int] = {}  # per method, the index of its last (fully randomised) stage
    for r in rows:
        if r["test"] == "sanity_mprt":
            full[r["method"]] = max(full.get(r["method"], -1), int(r["index"]))
    pick: Dict[tuple, dict] = {}
    for r in rows:
        stage = ("rerun" if int(r["index"]) < 0 else "full" if int(r["index"]) == full.get(r["method"])
                 else None) if r["test"] == "sanity_mprt" else "only"
        if stage and r["mean"]:
            pick[(r["method"], r["test"], r["statistic"], stage)] = r
    columns = [c for c in SANITY_COLUMNS if any(k[1:] == c[:3] for k in pick)]
    if not columns:
        return None
    methods = _methods(rows, base)

    def cells(meth: str) -> List[str]:
        return [_ci(pick[(meth, *c[:3])]) if (meth, *c[:3]) in pick else "--" for c in columns]

    caption = (f"{_esc(model)}: sanity checks on the first questions "
               f"({_n([int(r['n']) for r in rows if r['n']])} per cell), mean with its 95\\% "
               f"percentile bootstrap CI (seed {seed}). Rerun: Spearman $\\rho$ between the maps "
               "of two seeds, unrandomised (1 for a deterministic method). MPRT: $\\rho$ and "
               "$|\\rho|$ between the original maps and those after every layer is re-initialised "
               "from the top down (Adebayo et al. 2018), and $\\rho$ of the absolute maps; random "
               "logit: $\\rho$ between the maps of the match and the no-match logit (Sixt et al. "
               "2020; methods that explain no output have none); question swap: $\\rho$ between "
               "the maps of the sample's question and another on the same image; sMPRT: MPRT on "
               "maps averaged over 50 noisy inputs (Hedström et al. 2023); eMPRT: relative change "
               "of the maps' histogram entropy, (after $-$ before)/before. No significance test.")
    return _tabular("l" + "c" * len(columns), ["method"] + [c[3] for c in columns],
                    _body(methods, base, cells), caption, f"tab:sanity-{_label(model)}")


def diagnostics_table(model: str, rows: List[dict], base: Set[str], seed) -> str:
    """Appendix: per method its maps' diagnostics (ties, an estimator's convergence), mean
    [95% CI]; described, so nothing is marked."""
    names = sorted({r["metric"] for r in rows})
    cell = {(r["method"], r["metric"]): r for r in rows if r["mean"]}
    caption = (f"{_esc(model)}: diagnostics of the maps (mean over the questions with its 95\\% "
               f"percentile bootstrap CI, seed {seed}): tie\\_fraction, the share of patches whose "
               "value another patch shares; max\\_tied, whether the maximum was tied; an "
               "estimator's convergence rows. They describe the maps and rank nothing.")
    return _tabular("l" + "c" * len(names), ["method"] + [_esc(m) for m in names],
                    _body(_methods(rows, base), base, lambda meth: [
                        _ci(cell[(meth, m)]) if (meth, m) in cell else "--" for m in names]),
                    caption, f"tab:diagnostics-{_label(model)}")
