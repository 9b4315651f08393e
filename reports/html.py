"""index.html: one self-contained page rendered from the run folder's files alone.

Inputs: ``summary.csv``, ``manifest.json`` and ``gallery.npz`` (written by the run), so a report
can be re-rendered without recomputing anything.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Dict, List

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from benchmark.outputs import write_atomic
from reports.images import overlay, png_data_uri

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
                      "correct": bool(card.get("correct")), "methods": methods})
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
        cards.append({**c, "image": png_data_uri(overlay(image, None, target)),
                      "maps": [{"method": m,
                                "src": png_data_uri(overlay(image, data[f"{i}/map/{m}"], target))}
                               for m in c["methods"]]})
    return cards


def _fmt(v) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "—"
    return "—" if not np.isfinite(f) else f"{f:.3f}"


def _summary(out: Path) -> List[dict]:
    with open(out / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    best: Dict[tuple, float] = {}
    for r in rows:
        if r["region"] == "target" and r["subset"] == "all" and r["mean"] and r["method"] not in ("random", "center"):
            key = (r["model"], r["metric"])
            best[key] = max(best.get(key, -np.inf), float(r["mean"]))
    for r in rows:
        r["best"] = (r["region"] == "target" and r["subset"] == "all" and r["mean"] != ""
                     and float(r["mean"]) == best.get((r["model"], r["metric"])))
    return rows


def render(out: Path) -> str:
    """The HTML text of the report for run folder ``out``."""
    manifest = json.loads((out / "manifest.json").read_text())
    cards = _cards(out)
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape())
    filters = {"family": sorted({c["family"] for c in cards}),
               "model": sorted({c["model"] for c in cards}),
               "method": sorted({m["method"] for c in cards for m in c["maps"]})}
    image_side = manifest.get("dataset", {}).get("image_size", 96) or 96
    return env.get_template("index.html.j2").render(
        title="run " + manifest.get("git_commit", "")[:8], dataset=manifest.get("dataset", {}),
        seed=manifest.get("seed"), skipped=manifest.get("skipped_models", {}),
        models=manifest.get("models", {}), summary=_summary(out), gallery=cards,
        filters=filters, fmt=_fmt, card_width=(len(filters["method"]) + 1) * (2 * image_side + 8) + 24,
        manifest=json.dumps(manifest, indent=1, sort_keys=True))


def write_report(out: Path) -> Path:
    path = Path(out) / "index.html"
    write_atomic(path, render(Path(out)))
    return path
