"""What one batch of records feeds a model: its images, prepared by the model's own
preprocessing, and its side inputs (a fused model's segmentation stream); and a method
configured with the run's options."""
from __future__ import annotations

from typing import List, Optional

import torch

import methods
import metrics
from benchmark.engine.config import RunConfig
from benchmark.models.protocol import VLModel
from benchmark.models.tensors import PRECISIONS
from datasets.segmentation_stream import batch_segmentation


def batches(n: int, size: int) -> List[List[int]]:
    return [list(range(s, min(n, s + size))) for s in range(0, n, size)]


def images(recs, model: VLModel) -> torch.Tensor:
    """Records' images prepared for the model (its own preprocessing), on its device."""
    return model.preprocess([r.image for r in recs])


def segmentation(model: VLModel, recs, records, source: str,
                  seed: int = 0) -> Optional[torch.Tensor]:
    """The fused model's segmentation stream for a batch (``None`` for other models)."""
    n_classes = model.side_input_classes("segmentation")
    if n_classes is None:
        return None
    seg = batch_segmentation(recs, records, source, model.grid[0], n_classes, seed)
    return None if seg is None else seg.to(model.device)


def fed(model: VLModel, recs, records, cfg: RunConfig) -> VLModel:
    """``model`` given the batch's side inputs: a fused model's segmentation stream, what a
    model derives from the clean batch (a generative model's answer, :meth:`VLModel.prepared`)."""
    model = model.given(segmentation=segmentation(model, recs, records, cfg.segmentation, cfg.seed))
    return model.prepared(images(recs, model), [r.question for r in recs]) if model.prepares \
        else model


def precision(cfg: RunConfig):
    """The context the model's passes run in: nothing for fp32, else ``torch.autocast`` on the
    run's device with bf16 or fp16 (maps and scores are then cast back to fp32)."""
    import contextlib

    dtype = PRECISIONS[cfg.precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=cfg.device.split(":")[0], dtype=dtype)


def configured_method(name: str, cfg: RunConfig) -> methods.Attribution:
    """The registered method ``name`` with the run's options for it (``--method-option``)."""
    return methods.get(name).with_options(**cfg.method_options.get(name, {}))


def configured_metric(name: str, cfg: RunConfig):
    """The registered metric ``name`` with the run's options for it (``--metric-option``)."""
    return metrics.get(name).with_options(**cfg.metric_options.get(name, {}))
