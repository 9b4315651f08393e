"""Held-out accuracy of the embedded models per question family, with any segmentation source.

Behind ``python -m benchmark evaluate``: the ITM accuracy (positives against their hard
negatives) and VQA exact-match accuracy of :func:`benchmark.training.evaluate`, on the same
synthetic test questions the checkpoints record, for several models and — for fused models —
several segmentation sources (``shuffled`` feeds each image another image's map: if accuracy
drops, the model uses the stream).
"""
from __future__ import annotations

from typing import Iterable, List

import pandas as pd

SOURCES = ("exact", "none", "shuffled")


def heldout_table(names: Iterable[str], sources: Iterable[str], questions: int,
                  seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """One row per (model, segmentation, family) plus an ``all`` row per (model, segmentation)."""
    from benchmark import models
    from benchmark.models.embedded import EMBEDDED
    from benchmark.training import build_pool, evaluate

    rows: List[dict] = []
    pools = {}
    for name in names:
        cfg = EMBEDDED[name].config
        key = (cfg.image_size, cfg.patch_size)
        if key not in pools:
            pools[key] = build_pool("test", questions, cfg, seed, progress=progress)
        adapter = models.load(name)
        for source in (sources if cfg.fused else ["exact"]):
            scores = evaluate(adapter, pools[key], seg_source=source, seed=seed)
            seg = source if cfg.fused else "-"
            rows.append({"model": name, "segmentation": seg, "family": "all",
                         "itm_accuracy": scores["itm_accuracy"],
                         "vqa_accuracy": scores["vqa_accuracy"]})
            for fam, itm in scores["itm_by_family"].items():
                rows.append({"model": name, "segmentation": seg, "family": fam,
                             "itm_accuracy": itm, "vqa_accuracy": scores["vqa_by_family"][fam]})
    return pd.DataFrame(rows)


def by_family(table):
    """The held-out table wide: families × (accuracy, model[segmentation source])."""
    run = table.model + table.segmentation.map(lambda s: "" if s == "-" else f"[{s}]")
    return table.assign(run=run).pivot_table(index="family", columns="run", sort=False,
                                             values=["itm_accuracy", "vqa_accuracy"])
