"""Scoring one (model, method, batch) unit's maps: one tidy row per sample, metric and region.

A map that does not exist (the method does not apply, the estimator did not converge) or a
sample without a region keeps its row, with an empty value and a ``note`` saying why.
"""
from __future__ import annotations

import functools
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

import metrics
from benchmark.core.maps import to_image_size
from benchmark.engine.batch_inputs import configured_metric
from benchmark.engine.config import RunConfig
from benchmark.engine.object_effects import object_masks
from benchmark.core.errors import MissingWeights
from benchmark.models.pnp_pipelines import load_pipeline
from benchmark.models.pnp_vqa_pipeline import PnpVqa
from benchmark.models.protocol import VLModel
from benchmark.engine.passes import part
from datasets.segmentation_stream import absent_side_inputs
from benchmark.engine.shared import shared_inputs
from benchmark.core.errors import NotApplicable
from metrics._ties import max_tied, tie_fraction
from metrics.perturbation import SUBSTRATES
from metrics.base import MetricKind

REGIONS = ("target", "evidence", "distractor", "control")
#: per-sample diagnostics of every map (mean per model × method in summary.csv)
MAP_DIAGNOSTICS = {"tie_fraction": tie_fraction, "max_tied": max_tied}
UNCONVERGED = "excluded: the estimator did not converge (see its diagnostic rows)"


def note(why: str) -> str:
    return why if why.startswith("excluded") else f"not applicable: {why}"


def localisation_rows(base: dict, scorers: Sequence, heat: Optional[np.ndarray], rec,
                      tolerance: float, reason: Optional[str]) -> List[dict]:
    """Rows of the localisation metrics ``scorers`` (configured instances) for one sample."""
    rows = []
    finite = heat is not None and bool(np.isfinite(heat).all())
    # every metric and region upsamples the map to the masks' size: once here is the same
    full = None if heat is None else to_image_size(heat, rec.target_mask.shape)
    for fn in scorers:
        metric = fn.name
        for region in REGIONS:
            mask = {"target": rec.target_mask, "evidence": rec.evidence,
                    "distractor": rec.distractor_mask, "control": rec.control}[region]
            row = {**base, "metric": metric, "region": region, "value": None, "note": ""}
            if heat is None:
                row["note"] = note(reason)
            elif not mask.any():
                row["note"] = f"no {region} region"
            else:
                value = fn(full if mask.shape == full.shape else heat, mask,
                           tolerance=tolerance)
                row["value"] = None if not np.isfinite(value) else float(value)
                if not finite:
                    row["note"] = "non-finite map (counted as a miss)" \
                        if fn.non_finite == "miss" else "non-finite map"
                elif row["value"] is None:
                    row["note"] = "undefined (no positive relevance)"
            rows.append(row)
    if finite:
        rows += [{**base, "metric": name, "region": "", "value": fn(heat), "note": ""}
                 for name, fn in MAP_DIAGNOSTICS.items()]
    return rows


def reference_metric_rows(base: dict, scorers: Sequence, heat: Optional[np.ndarray], rec,
                          reason: Optional[str]) -> List[dict]:
    """Rows of the reference metrics ``scorers`` for one sample (against
    ``rec.extra[metric.reference]``)."""
    rows = []
    for fn in scorers:
        metric = fn.name
        row = {**base, "metric": metric, "region": "", "value": None, "note": ""}
        if heat is None:
            row["note"] = note(reason)
        elif rec.extra.get(fn.reference) is None:
            row["note"] = f"not applicable: the sample has no {fn.reference}"
        else:
            value = fn(heat, rec.extra[fn.reference])
            row["value"] = None if not np.isfinite(value) else float(value)
            if row["value"] is None:
                row["note"] = "undefined (no reference, no positive relevance or non-finite map)"
        rows.append(row)
    return rows


def excluded_rows(model: str, method: str, names: Sequence[str],
                  excluded: Dict[str, tuple]) -> List[dict]:
    """The rows of the samples the plan excluded (``excluded``: id → (family, note), e.g. an
    image file that is missing): every metric (localisation metrics on every region), with an
    empty value and the note."""
    rows = []
    for sid, (family, why) in excluded.items():
        base = {"model": model, "method": method, "sample_id": sid, "question_type": family,
                "correct": None, "value": None, "note": why}
        for metric in names:
            regions = REGIONS if metrics.get(metric).kind is MetricKind.LOCALISATION else ("",)
            rows += [{**base, "metric": metric, "region": region} for region in regions]
    return rows


def complexity_rows(base: dict, scorers: Sequence, heat: Optional[np.ndarray],
                    reason: Optional[str]) -> List[dict]:
    """Rows of the complexity metrics ``scorers`` (the map alone) for one sample."""
    rows = []
    for fn in scorers:
        row = {**base, "metric": fn.name, "region": "", "value": None, "note": ""}
        if heat is None:
            row["note"] = note(reason)
        else:
            value = fn(heat)
            row["value"] = None if not np.isfinite(value) else float(value)
            if row["value"] is None:
                row["note"] = "non-finite map"
        rows.append(row)
    return rows


def counterfactual_rows(base: dict, scorers: Sequence, heat: Optional[np.ndarray], rec,
                        effect: Optional[dict], tolerance: float, why: Optional[str]) -> List[dict]:
    """Rows of the counterfactual metrics for one sample (``effect``: its Δ per object)."""
    rows = []
    objects = object_masks(rec) if scorers and effect is not None else []
    for fn in scorers:
        metric = fn.name
        row = {**base, "metric": metric, "region": "", "value": None, "note": ""}
        if why is not None or heat is None:
            row["note"] = note(why or "no map")
        elif effect is None:
            row["note"] = "not applicable: the dataset cannot re-render this scene"
        else:
            value = fn(heat, objects, effect["delta"], tolerance=tolerance,
                       targets=[bool((m & rec.target_mask).any()) for m in objects])
            row["value"] = None if not np.isfinite(value) else float(value)
            if row["value"] is None:
                row["note"] = "undefined (fewer than 3 objects, equal effects or non-finite map)"
        rows.append(row)
    return rows


@functools.lru_cache(maxsize=2)
def _pipeline(name: str, weights_dir: Optional[str], tokenizer_dir: Optional[str],
              device: str) -> PnpVqa:
    return load_pipeline(name, weights_dir, tokenizer_dir).to(device)


def pnp_pipeline(cfg: RunConfig, device) -> Optional[PnpVqa]:
    """The run's PNP-VQA captioner and answerer (``--pnp-vqa``), loaded once per process on
    ``device``; ``None`` when the run names none (:class:`MissingWeights` when not on disk)."""
    if cfg.pnp_vqa is None:
        return None
    return _pipeline(cfg.pnp_vqa, cfg.weights_dir, cfg.tokenizer_dir, str(device))


def model_metric_rows(base_rows: List[dict], names: Sequence[str], model: VLModel,
                      images, recs, maps: Optional[torch.Tensor], invalid: Dict[int, str],
                      reason: Optional[str], scorer: Callable, cfg: RunConfig,
                      seconds: Optional[Dict[str, float]] = None,
                      directions: Optional[Dict[str, bool]] = None,
                      outside: Optional[Dict[str, Dict[int, str]]] = None,
                      tokens: Optional[torch.Tensor] = None,
                      cover: Optional[Dict[str, List[int]]] = None, memo=None) -> List[dict]:
    """Rows of the metrics that run the model on the maps (noted where they do not apply),
    and of the diagnostics they report (each name's direction into ``directions``); each
    metric's time is added to ``seconds`` (the run's profile). ``outside[metric]``: positions
    the run plan leaves out of that metric, with their note; ``tokens``: the method's
    question-token relevance, for the metrics that read it; ``cover[metric]``: the positions
    its own plan count covers, whatever the method (where its costly shared inputs run);
    ``memo``: the run's unit cache, where PNP-VQA keeps each question's answer by its inputs."""
    rows = []
    for metric in names:
        t0 = time.perf_counter()
        fn = configured_metric(metric, cfg)
        # a curve of the match probability carries no signal when the question does not match
        # the image (e.g. an exist question answered "no"): those samples keep a noted row
        unmatched = {i for i, r in enumerate(recs)
                     if fn.needs_match and r.extra.get("itm_label", 1) == 0}
        skipped = {**invalid, **(outside or {}).get(metric, {})}
        ok = [i for i in range(len(recs)) if i not in skipped and i not in unmatched]
        with part(f"{base_rows[0]['method'] if base_rows else ''}/{metric}"):
            scores, why = _scores(fn, model, images, recs, maps, ok, reason, scorer, cfg,
                                  tokens, (cover or {}).get(metric), memo)
        if seconds is not None:
            seconds[metric] = seconds.get(metric, 0.0) + time.perf_counter() - t0
        pos = {i: k for k, i in enumerate(ok)}
        for i, base in enumerate(base_rows):
            row = {**base, "metric": metric, "region": "", "value": None, "note": ""}
            if why is not None:
                row["note"] = f"not applicable: {why}"
            elif i in unmatched:
                row["note"] = "excluded: the question does not match the image (ITM label 0)"
            elif i not in pos:
                row["note"] = skipped[i]
            else:
                k = pos[i]
                row["value"] = float(scores.values[k])
                if scores.curves is not None:
                    row["curve"] = [float(v) for v in scores.curves[k]]
                    row["curve_x"] = [float(v) for v in scores.x]
            rows.append(row)
        for key, values in (scores.diagnostics if scores is not None else {}).items():
            rows += [{**base_rows[i], "metric": key, "region": "", "value": float(values[k]),
                      "note": ""} for k, i in enumerate(ok)]
            if directions is not None:
                directions[key] = True
    return rows


def _scores(fn, model: VLModel, images, recs, maps: Optional[torch.Tensor], ok: List[int],
            reason: Optional[str], scorer: Callable, cfg: RunConfig,
            tokens: Optional[torch.Tensor] = None, cover: Optional[List[int]] = None,
            memo=None) -> tuple:
    """(the metric's :class:`~metrics.base.CurveScores` on the samples ``ok`` or ``None``, why
    it does not apply or ``None``)."""
    why = reason or fn.applicable(model)
    extra = {}
    if getattr(fn, "needs_pnp", False) and why is None and maps is not None:
        try:
            extra = {"pnp": pnp_pipeline(cfg, model.device), "memo": memo}
        except MissingWeights as e:
            why = str(e)
    if maps is None or why is not None:
        return None, why or "no map"
    if not ok:
        return None, None
    sel = torch.tensor(ok)
    if getattr(fn, "reads_tokens", False):
        extra["token_relevance"] = None if tokens is None else tokens[sel]
    extra.update(shared_inputs(fn.shared, model, images, recs, cfg, sel, extra.get("pnp"),
                               {k: getattr(fn, k) for k in fn.shared_options}, cover))
    try:
        return fn(model.for_batch(len(recs)).select(sel), images[sel],
                  [recs[i].question for i in ok], maps[sel], [recs[i] for i in ok],
                  scorer=scorer, substrate=SUBSTRATES[cfg.substrate],
                  start=SUBSTRATES[cfg.insertion_start],
                  seed=cfg.seed, absent=absent_side_inputs(model, cfg.segmentation,
                                                           cfg.side_inputs == "consistent"),
                  vqa_mode=cfg.vqa_mode, **extra), None
    except NotApplicable as e:
        return None, str(e)

