"""The model's own effect of each object: the scene re-rendered without it, batched.

For a record whose dataset can re-render it (``record.extra["without"](k)`` → (image, semantic
map) without object k of ``record.extra["instance_map"]``), every object's effect on the match
logit, Δ_o = f(x) − f(x without o), and whether the predicted answer changes. The fused model's
segmentation stream is re-rendered too when it reads the exact maps (``--segmentation exact``);
with another source it keeps the original image's stream and only the image changes.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from benchmark.models.protocol import VLModel
from datasets.segmentation_stream import class_histogram
from datasets.control import instance_objects
from benchmark.models.tensors import chunked


def can_rerender(record) -> bool:
    return callable(record.extra.get("without")) and "instance_map" in record.extra


def object_masks(record) -> List[np.ndarray]:
    """The record's object masks, in instance-id order (the order of its effects)."""
    return list(instance_objects(record.extra["instance_map"]).values())


def object_effects(model: VLModel, recs: Sequence, preprocess: Callable, stream: Callable,
                   chunk: int = 128) -> Dict[str, Optional[dict]]:
    """sample_id → ``{"delta": [Δ_o], "answer_changed": [bool]}`` (objects in instance-id
    order), or None for a record that cannot be re-rendered.

    ``preprocess(list of (H, W, 3) uint8) → (B, 3, h, w)`` prepares images for the model;
    ``stream(list of (record, semantic map or None)) → (B, N, C) or None`` gives the fused
    model's segmentation stream (None: the record's own).
    """
    images, streams, owners = [], [], []  # owners: the record index of every image
    for i, r in enumerate(recs):
        if not can_rerender(r):
            continue
        ids = list(instance_objects(r.extra["instance_map"]))
        variants = [(r.image, None)] + [r.extra["without"](k) for k in ids]
        images += [v[0] for v in variants]
        streams += [(r, v[1]) for v in variants]
        owners += [i] * len(variants)
    out: Dict[str, Optional[dict]] = {r.sample_id: None for r in recs}
    if not images:
        return out
    x = preprocess(images)
    seg = stream(streams)
    text = model.tokenize([recs[i].question for i in owners])
    if model.prepares:  # what it derives from the clean image (the answer) holds for each object
        first = [owners.index(i) for i in sorted(set(owners))]
        model = model.prepared(x[first], [recs[i].question for i in sorted(set(owners))])
        model = model.select(torch.tensor([sorted(set(owners)).index(i) for i in owners]))

    def run(s: int, e: int) -> torch.Tensor:
        view = model.select(slice(s, e)).given(segmentation=None if seg is None else seg[s:e])
        hidden = view.text_hidden(view.visual_tokens(x[s:e]), text[s:e])[:, 0]
        logit = view.match_head(hidden)[:, 1:2]
        answer = view.answer_head(hidden).argmax(-1, keepdim=True) if view.has_answer_head \
            else torch.zeros_like(logit)
        return torch.cat([logit, answer.to(logit.dtype)], 1)

    with torch.no_grad():
        scores = chunked(run, len(images), model.images_per_forward(chunk)).double().cpu().numpy()
    owners = np.asarray(owners)
    for i in np.unique(owners):
        block = scores[owners == i]  # the original image first, then one row per object
        out[recs[i].sample_id] = {"delta": (block[0, 0] - block[1:, 0]).tolist(),
                                  "answer_changed": (block[1:, 1] != block[0, 1]).tolist()
                                  if model.answers else []}
    return out


def semantic_stream(model: VLModel, source: str, own: Callable) -> Callable:
    """The ``stream`` argument of :func:`object_effects` for a run's segmentation ``source``:
    re-rendered exact maps, or ``own(records)`` (the run's stream of the original records)."""

    def stream(items):
        n_classes = model.side_input_classes("segmentation")
        if n_classes is None:
            return None
        if source != "exact":
            seg = own([r for r, _ in items])
            return None if seg is None else seg.to(model.device)
        rows = [class_histogram(sem if sem is not None else r.semantic_map, model.grid[0],
                                n_classes) for r, sem in items]
        return torch.from_numpy(np.stack(rows)).to(model.device)

    return stream
