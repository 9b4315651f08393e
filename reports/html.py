"""index.html: one self-contained page rendered from the run folder's files alone.

Inputs: ``summary.csv``, ``manifest.json`` and ``gallery.npz`` (written by the run), so a report
can be re-rendered without recomputing anything.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Set

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from benchmark.engine.analysis import declared_pairs
from benchmark.engine.meta_eval import passing
from benchmark.core.atomic import write_atomic
from benchmark.core.beside import beside
from reports import figures, leaderboard
from reports.matrices import (agreement_matrices, controlled, method_matrices, modality_table,
                              model_tables)
from reports.run_files import diagnostics, is_true, read_csv
from reports.images import display_side, overlay, thumbnail_uri
from reports.latex import baselines, exploratory

TEMPLATES = Path(__file__).with_name("templates")


def save_gallery(out: Path, gallery: List[dict]) -> Path:
    """Store gallery cards (images, masks, maps, texts) in ``gallery.npz`` for re-rendering."""
    arrays: Dict[str, np.ndarray] = {}
    index = []
    for i, card in enumerate(gallery):
        r = card["record"]
        arrays[f"{i}/image"] = r.image
        arrays[f"{i}/target"] = r.target_mask
        methods = sorted(card["maps"])
        for m in methods:
            arrays[f"{i}/map/{m}"] = np.asarray(card["maps"][m], np.float32)
        index.append({"model": card["model"], "sample_id": r.sample_id, "question": r.question,
                      "answer": r.answer, "family": r.family, "prediction": card["prediction"],
                      "correct": bool(card.get("correct")), "methods": methods,
                      "tokens": {m: card.get("tokens", {})[m]
                                 for m in sorted(card.get("tokens", {}))}})
    arrays["index"] = np.frombuffer(json.dumps(index).encode(), dtype=np.uint8)
    path = out / "gallery.npz"
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_atomic(path, buf.getvalue())
    return path


def _cards(out: Path) -> List[dict]:
    path = out / "gallery.npz"
    if not path.exists():
        return []
    data = np.load(path)
    index = json.loads(bytes(data["index"]).decode())
    cards = []
    for i, c in enumerate(index):
        image, target = data[f"{i}/image"], data[f"{i}/target"]
        cards.append({**c, "image": thumbnail_uri(overlay(image, None, target)),
                      "maps": [{"method": m,
                                "src": thumbnail_uri(overlay(image, data[f"{i}/map/{m}"], target))}
                               for m in c["methods"]],
                      "tokens": [{"method": m, "words": shaded(words)}
                                 for m, words in c.get("tokens", {}).items()]})
    return cards


def shaded(words: List[list]) -> List[tuple]:
    """(token, opacity in [0, 1]): the token's relevance over the question's largest absolute
    one (a negative relevance shades as its magnitude; the table keeps the sign)."""
    top = max((abs(float(v)) for _, v in words), default=0.0)
    return [(w, abs(float(v)) / top if top > 0 else 0.0) for w, v in words]


def _fmt(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—"
    return "—" if not np.isfinite(f) else f"{f:.3f}"


def _summary(rows: List[dict], base: Set[str], mark_best: bool = True) -> List[dict]:
    """Overall rows (all questions / correctly answered), best real method (not one of the
    baselines ``base``) per model and metric marked using the metric's direction (unless
    ``mark_best`` is false: a diagnostic describes a map, it does not rank it)."""
    main = [r for r in rows if r["question_type"] == "all"]
    best: Dict[tuple, float] = {}
    for r in main:
        if r["region"] in ("target", "") and r["subset"] == "all" and r["mean"] \
                and r["method"] not in base:
            key = (r["model"], r["metric"])
            v = float(r["mean"]) * (1 if is_true(r["higher_is_better"]) else -1)
            best[key] = max(best.get(key, -np.inf), v)
    for r in main:
        sign = 1 if is_true(r["higher_is_better"]) else -1
        r["best"] = (mark_best and r["region"] in ("target", "") and r["subset"] == "all"
                     and r["mean"] != ""
                     and r["method"] not in base
                     and float(r["mean"]) * sign == best.get((r["model"], r["metric"])))
        r["direction"] = "higher" if sign > 0 else "lower"
    return main


def _pivots(main: List[dict], base: Set[str]) -> List[dict]:
    """Compact tables: (model, method) rows × metric columns, one per (region, subset) view."""
    views = [("all questions, target region", "all", ("target", "")),
             ("grounding control: as many non-target objects of matched size (control)", "all",
              ("control",)),
             ("near-miss distractor object", "all", ("distractor",)),
             ("correctly answered questions only, target region", "correct", ("target", ""))]
    out = []
    for title, subset, regions in views:
        rows = [r for r in main if r["subset"] == subset and r["region"] in regions]
        if not rows:
            continue
        metrics = sorted({r["metric"] for r in rows})
        cells: Dict[tuple, dict] = {(r["model"], r["method"], r["metric"]): r for r in rows}
        keys = sorted({(r["model"], r["method"]) for r in rows},
                      key=lambda k: (k[0], k[1] in base, k[1]))
        direction = {r["metric"]: r["direction"] for r in rows}
        out.append({"title": title, "metrics": metrics, "direction": direction,
                    "rows": [(m, meth, [cells.get((m, meth, x)) for x in metrics])
                             for m, meth in keys]})
    return out


def _families(rows: List[dict]) -> dict:
    """metric → (families, [(model, method, {family: mean})]) for target/all rows."""
    out: Dict[str, dict] = {}
    for r in rows:
        if r["subset"] != "all" or r["region"] not in ("target", "") or r["question_type"] == "all":
            continue
        t = out.setdefault(r["metric"], {"families": set(), "rows": {}})
        t["families"].add(r["question_type"])
        t["rows"].setdefault((r["model"], r["method"]), {})[r["question_type"]] = r["mean"]
    return {m: {"families": sorted(t["families"]),
                "rows": [(k[0], k[1], v) for k, v in sorted(t["rows"].items())]}
            for m, t in sorted(out.items())}


def _model_pairs(models: Dict[str, dict]) -> Set[tuple]:
    """The analysis's model pairs the run has (each differs in one factor), else every pair of
    the run's models that differs in one factor."""
    declared = {(a, b) for a, b, _ in declared_pairs(sorted(models))}
    return declared or controlled(models)


#: from this many metrics on, the forest plots are drawn in a second process
PARALLEL_FORESTS = 12


def render(out: Path) -> str:
    """The HTML text of the report for run folder ``out``."""
    manifest = json.loads((out / "manifest.json").read_text())
    cards = _cards(out)
    described = diagnostics(out)
    summary_rows = [r for r in read_csv(out, "summary.csv") if r["metric"] not in described]
    diagnostic_rows = [r for r in read_csv(out, "summary.csv") if r["metric"] in described
                       and r["subset"] == "all" and r["question_type"] == "all"]
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape())
    filters = {"family": sorted({c["family"] for c in cards}),
               "model": sorted({c["model"] for c in cards}),
               "method": sorted({m["method"] for c in cards for m in c["maps"]})}
    image_side = manifest.get("dataset", {}).get("image_size", 96) or 96
    if isinstance(image_side, dict):  # images of several sizes
        image_side = image_side["max"]
    all_comparisons = read_csv(out, "comparisons.csv")
    loose = exploratory(out)
    base = baselines(out)
    grounding = [r for r in all_comparisons if r["kind"] == "region" and r["n"] not in ("", "0")]
    meta = read_csv(out, "meta.csv") if (out / "meta.csv").exists() else []
    boards = leaderboard.boards(summary_rows, all_comparisons, base, passing(meta), loose)
    apart = base | loose  # never marked best
    with beside(len({r["metric"] for r in summary_rows}) >= PARALLEL_FORESTS) as pool:
        # the forest plots, half the figures' time, drawn beside the others on a second core
        forests = pool.submit(figures.forest_figures, summary_rows, out, base)
        drawn = {"board_figures": {b.model: figures.leaderboard_figure(b, out) for b in boards},
                 "family_figures": figures.family_figures(summary_rows, out,
                                                          leaderboard.HEADLINE),
                 "sanity_figures": figures.sanity_figures(read_csv(out, "sanity.csv"), out),
                 "curves": figures.curve_figures(read_csv(out, "curves.csv"), out)}
        drawn["forests"] = forests.result()
    return env.get_template("index.html.j2").render(
        title="run " + manifest.get("git_commit", "")[:8], dataset=manifest.get("dataset", {}),
        seed=manifest.get("seed"), skipped=manifest.get("skipped_models", {}),
        nonfinite=manifest.get("nonfinite_maps", {}),
        models=manifest.get("models", {}),
        boards=boards, matrices=method_matrices(all_comparisons), **drawn,
        summary=(main := _summary(summary_rows, apart)), pivots=_pivots(main, apart),
        diagnostics=_pivots(_summary(diagnostic_rows, apart, mark_best=False), apart),
        families=_families(summary_rows), grounding=grounding,
        model_tables=model_tables(all_comparisons, leaderboard.HEADLINE, apart,
                                  _model_pairs(manifest.get("models", {}))),
        sanity=read_csv(out, "sanity.csv"), stability=read_csv(out, "stability.csv"),
        agreement=agreement_matrices(read_csv(out, "agreement.csv"))
        if (out / "agreement.csv").exists() else [],
        modality=modality_table(read_csv(out, "modality.csv"), manifest.get("seed") or 0)
        if (out / "modality.csv").exists() else [],
        meta=meta, gallery=cards,
        filters=filters, fmt=_fmt, thumb=display_side(image_side),
        card_width=(len(filters["method"]) + 1) * (display_side(image_side) + 8) + 24,
        manifest=json.dumps(manifest, indent=1, sort_keys=True))


def write_report(out: Path) -> Path:
    path = Path(out) / "index.html"
    write_atomic(path, render(Path(out)))
    return path
