"""The report's figures, drawn with matplotlib and written to ``figures/`` as PDF and SVG (fonts
embedded: TrueType in the PDF, glyphs as paths in the SVG), byte-identical for the same run."""
from __future__ import annotations

import base64
import io
import textwrap
from pathlib import Path
from typing import Dict, List, Sequence, Set

import numpy as np

from benchmark.core.atomic import write_atomic
from reports.leaderboard import HEADLINE, REFERENCE, Board, oracle_of
from reports.run_files import as_float

STYLE = {"svg.hashsalt": "vqa-xai-bench", "svg.fonttype": "path", "pdf.fonttype": 42,
         "font.size": 8, "axes.titlesize": 9}
METADATA = {"svg": {"Date": None, "Creator": None}, "pdf": {"CreationDate": None, "Creator": None,
                                                            "Producer": None}}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, out: Path, name: str) -> str:
    """Write ``figures/<name>.pdf`` and ``.svg`` atomically; return a PNG rendering (100 dpi,
    256 colours) as a data URI for the page (far smaller than the SVG, whose glyphs are
    paths)."""
    plt = _pyplot()
    (out / "figures").mkdir(parents=True, exist_ok=True)
    # the SVG's element ids hash the salt read at save time: outside the style a figure built
    # elsewhere would get random ids, and the same seed would not give the same bytes
    with plt.rc_context(STYLE):
        for fmt in ("pdf", "svg"):
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, metadata=METADATA[fmt])
            write_atomic(out / "figures" / f"{name}.{fmt}", buf.getvalue())
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(_palette_png(buf.getvalue())).decode()


def _palette_png(png: bytes) -> bytes:
    """The PNG with a 256-colour palette: line plots and heatmaps lose nothing visible and
    shrink two- to three-fold, which keeps the self-contained page small."""
    from PIL import Image

    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _finish(fig, ax, out: Path, title: str, caption: str, name: str) -> Dict[str, str]:
    """Title and legend on ``ax``, the figure saved as ``name``: ``{"title", "src"}``."""
    ax.set_title(title)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return {"title": caption, "src": save(fig, out, name)}


def slug(text: str) -> str:
    """A file-name part: letters, digits, ``-`` and ``_`` kept, anything else ``-``."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


def _shades(board: Board, grid: np.ndarray) -> np.ndarray:
    """Colour values on one scale for every column: a share of the random-to-oracle gap as it
    is; a difference to random divided by the column's largest |difference| (random 0, the
    best 1), since its units are the metric's own."""
    shade = grid.copy()
    for j, m in enumerate(board.metrics):
        if board.scale.get(m) == "random":
            top = np.nanmax(np.abs(grid[:, j])) if np.isfinite(grid[:, j]).any() else 0.0
            shade[:, j] = grid[:, j] / top if top > 0 else 0.0
    return np.clip(shade, -0.5, 1.5)


def leaderboard_figure(board: Board, out: Path) -> str:
    """Methods × headline metrics, colour = normalised score (random 0, oracle 1; or the
    difference to random where the run has no oracle, :attr:`Board.note`)."""
    plt = _pyplot()
    with plt.rc_context(STYLE):
        methods = [r[0] for r in board.rows]
        grid = np.array([[r[3][m].normalised if m in r[3] and r[3][m].normalised is not None
                          else np.nan for m in board.metrics] for r in board.rows], dtype=float)
        fig, ax = plt.subplots(figsize=(1.1 * len(board.metrics) + 2.2, 0.32 * len(methods) + 1.2))
        ax.imshow(_shades(board, grid), cmap="RdYlGn", vmin=-0.5, vmax=1.5, aspect="auto")
        for i, j in np.ndindex(grid.shape):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(board.metrics)),
                      [f"{m} {'↑' if board.higher_is_better[m] else '↓'}" for m in board.metrics],
                      rotation=30, ha="right")
        ax.set_yticks(range(len(methods)), [m + (" (baseline)" if r[1] else "")
                                             for m, r in zip(methods, board.rows)])
        n_real = sum(1 for r in board.rows if not r[1])
        if 0 < n_real < len(methods):
            ax.axhline(n_real - 0.5, color="black", linewidth=1)
        ax.set_title(f"{board.model}: " + ("normalised score (random 0, oracle 1)" if not
                                           board.note else "score (random 0; no oracle: see "
                                           "the note)"))
        fig.tight_layout()
        return save(fig, out, f"leaderboard_{slug(board.model)}")


def forest_figure(metric: str, rows: Sequence[dict], out: Path,
                  baselines: Set[str] = frozenset()) -> str:
    """:func:`forest` saved as ``figures/forest_<metric>``; its data URI."""
    return save(forest(metric, rows, baselines), out, f"forest_{slug(metric)}")


def forest(metric: str, rows: Sequence[dict], baselines: Set[str] = frozenset()):
    """Per model (one panel each, three to a row), every method's mean with its 95% CI on
    ``metric``; the target region filled, the size-matched control hollow beside it; the
    baselines below a rule; ``random`` and the oracle as reference lines where the run has
    them. Returns the figure."""
    plt = _pyplot()
    models = sorted({r["model"] for r in rows})
    methods = sorted({r["method"] for r in rows}, key=lambda m: (m in baselines, m))
    cols = min(3, len(models))
    nrows = -(-len(models) // cols)
    width = 3.4 * cols + 1.4
    refs = [(name, style) for name, style in ((REFERENCE, "dotted"), (oracle_of(metric), "dashed"))
            if any(r["method"] == name for r in rows)]
    legend = "; ".join(["filled: target", "hollow: size-matched control"]
                       + [f"{style}: {name}" for name, style in refs]
                       + (["baselines below the rule"] if baselines & set(methods) else []))
    # wrapped to the figure's width (about 14 characters per inch at 8 pt), so that no part of
    # the title falls outside the image
    title = textwrap.fill(f"{metric}: mean and 95% CI ({legend})", int(width * 14))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, cols, squeeze=False, sharey=True, layout="constrained",
                                 figsize=(width, nrows * (0.24 * len(methods) + 1.0)
                                          + 0.25 * (title.count("\n") + 2)))
        for ax in axes.flat[len(models):]:
            ax.set_visible(False)
        for ax, model in zip(axes.flat, models):
            mine = {(r["method"], r["region"]): r for r in rows if r["model"] == model}
            for y, method in enumerate(methods):
                for region, dy, face in (("target", -0.12, "C0"), ("", -0.12, "C0"),
                                         ("control", 0.16, "none")):
                    r = mine.get((method, region))
                    if r is None or not np.isfinite(float(r["mean"] or "nan")):
                        continue
                    m, lo, hi = float(r["mean"]), float(r["ci_low"]), float(r["ci_high"])
                    ax.errorbar(m, y + dy, xerr=[[m - lo], [hi - m]], fmt="o", markersize=3.5,
                                color="C0", markerfacecolor=face, capsize=2, linewidth=1)
            real = sum(m not in baselines for m in methods)
            if 0 < real < len(methods):
                ax.axhline(real - 0.5, color="black", linewidth=0.6)
            for ref, style in refs:
                r = mine.get((ref, "target")) or mine.get((ref, ""))
                if r is not None and np.isfinite(float(r["mean"] or "nan")):
                    ax.axvline(float(r["mean"]), color="grey", linestyle=style, linewidth=1)
            ax.set_title(model)
            ax.set_yticks(range(len(methods)), methods)
            ax.set_ylim(len(methods) - 0.5, -0.5)
            ax.grid(axis="x", linewidth=0.3)
            ax.set_xlabel(metric)
        fig.suptitle(title, fontsize=8)
        return fig


def forest_figures(summary: Sequence[dict], out: Path,
                   baselines: Set[str] = frozenset()) -> List[Dict[str, str]]:
    """One forest plot per metric of the run (all questions; target and control regions): the
    headline metrics first, in the leaderboard's order, then the others alphabetically."""
    rows = [r for r in summary if r["subset"] == "all" and r["question_type"] == "all"
            and r["region"] in ("target", "", "control")]
    names = {r["metric"] for r in rows}
    order = [m for m in HEADLINE if m in names] + sorted(names - set(HEADLINE))
    return [{"metric": m, "src": forest_figure(m, [r for r in rows if r["metric"] == m], out,
                                               baselines)}
            for m in order]


def curve_figures(curves: Sequence[dict], out: Path) -> List[Dict[str, str]]:
    """One figure per (model, metric) of ``curves.csv``: the mean curve of every method, its
    95% bootstrap CI as a band."""
    plt = _pyplot()
    groups: Dict[tuple, Dict[str, list]] = {}
    for r in curves:
        groups.setdefault((r["model"], r["metric"]), {}).setdefault(r["method"], []).append(
            tuple(as_float(r.get(k)) for k in ("x", "value", "ci_low", "ci_high")))
    images = []
    with plt.rc_context(STYLE):
        for (model, metric), by_method in sorted(groups.items()):
            fig, ax = plt.subplots(figsize=(4.2, 3.0))
            for method, pts in sorted(by_method.items()):
                xs, ys, lo, hi = zip(*pts)
                line, = ax.plot(xs, ys, marker="o", markersize=2, label=method)
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, linewidth=0)
            removed = "deletion" in metric or "drop" in metric
            ax.set_xlabel("fraction of patches" + (" removed" if removed else " kept/inserted"))
            if metric == "vqa_keep_auc":  # its grid and AUC are in log k
                ax.set_xscale("log")
            ax.set_ylabel("match probability" if metric in ("deletion_auc", "insertion_auc")
                          else "VQA accuracy")
            images.append(_finish(fig, ax, out, f"{model}: {metric}", f"{model} — {metric}",
                                  f"curve_{slug(model)}_{slug(metric)}"))
    return images


def family_figures(summary: Sequence[dict], out: Path, metrics: Sequence[str]) -> List[Dict[str, str]]:
    """Per headline metric, one panel per model: each method's mean per question family (all
    questions, target region) as grouped bars."""
    plt = _pyplot()
    rows = [r for r in summary if r["subset"] == "all" and r["question_type"] != "all"
            and r["region"] in ("target", "") and r["metric"] in metrics
            and np.isfinite(float(r["mean"] or "nan"))]
    images = []
    with plt.rc_context(STYLE):
        for metric in [m for m in metrics if any(r["metric"] == m for r in rows)]:
            mine = [r for r in rows if r["metric"] == metric]
            models = sorted({r["model"] for r in mine})
            families = sorted({r["question_type"] for r in mine})
            methods = sorted({r["method"] for r in mine})
            fig, axes = plt.subplots(len(models), 1, squeeze=False,
                                     figsize=(0.9 * len(families) + 2.5, 2.2 * len(models) + 0.6))
            width = 0.8 / len(methods)
            for ax, model in zip(axes[:, 0], models):
                value = {(r["method"], r["question_type"]): float(r["mean"])
                         for r in mine if r["model"] == model}
                for k, method in enumerate(methods):
                    ax.bar([i + k * width for i in range(len(families))],
                           [value.get((method, f), np.nan) for f in families], width,
                           label=method)
                ax.set_xticks([i + 0.4 - width / 2 for i in range(len(families))], families,
                              rotation=20, ha="right")
                ax.set_title(f"{model}: {metric} per question family")
                ax.axhline(0, color="black", linewidth=0.5)
            axes[0, 0].legend(fontsize=6, ncol=min(4, len(methods)))
            fig.tight_layout()
            images.append({"title": f"{metric} per family",
                           "src": save(fig, out, f"families_{slug(metric)}")})
    return images


def sanity_figures(sanity: Sequence[dict], out: Path) -> List[Dict[str, str]]:
    """Per model: the cascading randomisation test's mean Spearman ρ (with its CI band) at each
    stage, one line per method, from the unrandomised rerun (stage −1) to the input side."""
    plt = _pyplot()
    rows = [r for r in sanity if r["test"] == "sanity_mprt" and r["statistic"] == "spearman"
            and np.isfinite(float(r["mean"] or "nan"))]
    images = []
    with plt.rc_context(STYLE):
        for model in sorted({r["model"] for r in rows}):
            mine = [r for r in rows if r["model"] == model]
            fig, ax = plt.subplots(figsize=(5.5, 3.2))
            stages: Dict[int, str] = {}
            for method in sorted({r["method"] for r in mine}):
                pts = sorted((int(r["index"]), float(r["mean"]), float(r["ci_low"]),
                              float(r["ci_high"]), r["stage"]) for r in mine if r["method"] == method)
                xs = [p[0] for p in pts]
                ax.plot(xs, [p[1] for p in pts], marker="o", markersize=2.5, label=method)
                ax.fill_between(xs, [p[2] for p in pts], [p[3] for p in pts], alpha=0.15)
                stages.update({p[0]: p[4] for p in pts})
            ticks = sorted(stages)
            ax.set_xticks(ticks, [stages[t] if t >= 0 else "rerun" for t in ticks], rotation=60,
                          ha="right", fontsize=6)
            ax.set_ylabel("Spearman ρ with the original maps")
            ax.axhline(0, color="black", linewidth=0.5)
            images.append(_finish(fig, ax, out, f"{model}: cascading randomisation (output side "
                                  "first)", f"{model} — sanity_mprt", f"sanity_{slug(model)}"))
    return images
