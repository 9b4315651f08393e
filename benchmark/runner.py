"""The engine: dataset → model → method → heatmap → metrics → tidy result rows.

Every (model, method) pair is run over the same samples in batches; each localisation metric is
scored on the question's target region and, as a grounding control, on a distractor object of the
same image. A method that does not apply to a model, a non-finite map, or a sample without a
region keeps its rows, with an empty value and a ``note``.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

import datasets
import methods
import metrics
from benchmark import models
from benchmark.models.adapter import ITMAdapter
from benchmark.models.tiny import normalise
from benchmark.segmentation import batch_segmentation
from metrics._common import default_tolerance
from metrics.vqa import exact_match, vqa_accuracy

LOCALISATION = ("pointing_game",)
REGIONS = ("target", "distractor")


@dataclass
class RunConfig:
    """Everything that determines a run's numbers (written to the manifest)."""

    models: List[str]
    methods: List[str]
    metrics: List[str]
    dataset: str = "synthetic"
    split: str = "test"
    data_root: Optional[str] = None
    limit: Optional[int] = None
    seed: int = 0
    device: str = "cpu"
    batch_size: int = 16
    tolerance: Optional[float] = None  # pointing game; None → scaled from TorchRay's 15 px @ 224
    gallery: int = 12
    segmentation: str = "exact"  # fused models' stream: exact | none | shuffled | npy:DIR

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunResult:
    rows: List[dict] = field(default_factory=list)
    skipped: Dict[str, str] = field(default_factory=dict)
    model_info: Dict[str, dict] = field(default_factory=dict)
    gallery: List[dict] = field(default_factory=list)
    timings: Dict[str, float] = field(default_factory=dict)
    dataset_info: dict = field(default_factory=dict)


def load_dataset(cfg: RunConfig):
    options = {"split": cfg.split, "seed": cfg.seed}
    if cfg.data_root:
        options["data_root"] = cfg.data_root
    return datasets.get(cfg.dataset)(**options)


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield list(range(start, min(n, start + size)))


def _segmentation(model: ITMAdapter, recs, records, source: str) -> Optional[torch.Tensor]:
    """The fused model's segmentation stream for a batch (``None`` for other models)."""
    if model.fusion_encoder is None:
        return None
    seg = batch_segmentation(recs, records, source, model.grid[0],
                             model.model.visual_encoder.n_classes)
    return None if seg is None else seg.to(model.device)


def _score_localisation(metric: str, heat: np.ndarray, mask: np.ndarray, tolerance: float) -> float:
    fn = metrics.get(metric)
    return fn(heat, mask, tolerance=tolerance) if metric == "pointing_game" else fn(heat, mask)


def _images(recs, device: str) -> torch.Tensor:
    return normalise(torch.from_numpy(np.stack([r.image for r in recs]))).to(device)


def _predict(model: ITMAdapter, records, cfg: RunConfig) -> Dict[str, str]:
    """The model's answer to every question (empty strings for a model without a VQA head)."""
    if not model.answers:
        return {r.sample_id: "" for r in records}
    out = {}
    for idx in _batches(len(records), cfg.batch_size):
        recs = [records[i] for i in idx]
        with model.bind(segmentation=_segmentation(model, recs, records, cfg.segmentation)):
            preds = model.predict_answers(_images(recs, cfg.device), [r.question for r in recs])
        out.update({r.sample_id: p for r, p in zip(recs, preds)})
    return out


def _localisation_rows(base: dict, loc_metrics: Sequence[str], heat: Optional[np.ndarray], rec,
                       tolerance: float, not_applicable: Optional[str]) -> List[dict]:
    rows = []
    finite = heat is not None and bool(np.isfinite(heat).all())
    for metric in loc_metrics:
        for region in REGIONS:
            mask = rec.target_mask if region == "target" else rec.distractor_mask
            row = {**base, "metric": metric, "region": region, "value": "", "note": ""}
            if heat is None:
                row["note"] = f"not applicable: {not_applicable}"
            elif not mask.any():
                row["note"] = f"no {region} region"
            else:
                row["value"] = _score_localisation(metric, heat, mask, tolerance)
                if not finite:
                    row["note"] = "non-finite map (counted as a miss)"
            rows.append(row)
    return rows


def run(cfg: RunConfig, progress: bool = True, log=None) -> RunResult:
    """Compute every requested (model, method, metric, sample) value."""
    from tqdm import tqdm

    log = log or (lambda msg: print(msg, file=sys.stderr))
    result = RunResult()
    t0 = time.time()
    data = load_dataset(cfg)
    n = len(data) if cfg.limit is None else min(cfg.limit, len(data))
    records = [data[i] for i in range(n)]
    if not records:
        raise ValueError(f"dataset {cfg.dataset!r} has no samples")
    result.dataset_info = {**data.describe(), "n_used": n, "fingerprint": data.fingerprint(records)}
    scorer = exact_match if data.exact_match else vqa_accuracy
    image_side = min(records[0].image.shape[:2])
    tolerance = cfg.tolerance if cfg.tolerance is not None else default_tolerance(image_side)
    result.dataset_info["pointing_tolerance_px"] = tolerance
    result.timings["load_data_s"] = time.time() - t0
    loc_metrics = [m for m in cfg.metrics if m in LOCALISATION]

    for model_name in cfg.models:
        reason = models.missing(model_name)
        if reason:
            result.skipped[model_name] = reason
            log(f"skipping {model_name}: {reason}")
            continue
        t_model = time.time()
        model = models.load(model_name, device=cfg.device)
        result.model_info[model_name] = dict(model.info)
        predictions = _predict(model, records, cfg)
        correct = {sid: scorer(pred, r.answers)
                   for r, (sid, pred) in zip(records, predictions.items())}
        gallery_maps: Dict[str, Dict[str, np.ndarray]] = {}
        for method_name in cfg.methods:
            method = methods.get(method_name)
            not_applicable = method.applicable(model)
            t_method = time.time()
            bar = tqdm(total=n, disable=not progress, unit="sample", leave=False,
                       desc=f"{model_name} × {method_name}")
            for b, idx in enumerate(_batches(n, cfg.batch_size)):
                recs = [records[i] for i in idx]
                maps = None
                if not_applicable is None:
                    images = _images(recs, cfg.device)
                    with model.bind(segmentation=_segmentation(model, recs, records,
                                                               cfg.segmentation)):
                        maps = method(model, images, [r.question for r in recs],
                                      seed=cfg.seed * 100003 + b).numpy()
                for k, r in enumerate(recs):
                    heat = None if maps is None else maps[k]
                    if heat is not None and idx[0] + k < cfg.gallery:
                        gallery_maps.setdefault(r.sample_id, {})[method_name] = heat
                    base = {"model": model_name, "method": method_name, "sample_id": r.sample_id,
                            "question_type": r.family, "correct": correct.get(r.sample_id, "")}
                    result.rows.extend(_localisation_rows(base, loc_metrics, heat, r, tolerance,
                                                          not_applicable))
                bar.update(len(idx))
            bar.close()
            result.timings[f"{model_name}/{method_name}_s"] = time.time() - t_method
        result.timings[f"{model_name}_s"] = time.time() - t_model
        for r in records[:cfg.gallery]:
            result.gallery.append({"model": model_name, "record": r,
                                   "prediction": predictions.get(r.sample_id, ""),
                                   "correct": correct.get(r.sample_id, 0.0) >= 1.0,
                                   "maps": gallery_maps.get(r.sample_id, {})})
    result.timings["total_s"] = time.time() - t0
    return result


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v))
