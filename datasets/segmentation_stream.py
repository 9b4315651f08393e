"""The fused models' segmentation stream: per-patch class histograms on the model's patch grid.

Sources: the synthetic generator's exact semantic map (``exact``), that map degraded as by an
imperfect segmenter at a stated error rate (``degraded:RATE``, see :func:`degrade`), no stream
(``none``: zeros),
another image's map (``shuffled``: the next sample's, a fixed derangement), a folder of ``.npy``
maps in DIFNet's (C, h, w) layout, one per sample, resampled to the grid (``npy:DIR``), or COCO
panoptic annotations for the records' COCO image ids (``panoptic:PATH``,
:mod:`datasets.coco_panoptic`).
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.errors import InputError

SOURCES = ("exact", "degraded:RATE", "none", "shuffled", "npy:DIR", "panoptic:PATH")


def degrade(semantic_map: np.ndarray, instance_map: np.ndarray, rate: float, n_classes: int,
            seed: int, sample_id: str) -> np.ndarray:
    """An imperfect segmenter's map from an exact one, at a stated error ``rate``: each object
    is given a wrong object class with probability ``rate``, and every object's outline moves
    by one pixel (dilated or eroded, equally likely). Seeded by (``seed``, ``sample_id``).
    Classes 0 and 1 are background and clutter, the rest object classes."""
    from scipy.ndimage import binary_dilation, binary_erosion

    from benchmark.core.seeds import sample_rng

    rng = sample_rng(seed, sample_id, 11)
    out = semantic_map.copy()
    for k in np.unique(instance_map):
        if k == 0:
            continue
        obj = instance_map == k
        cls = int(np.bincount(semantic_map[obj]).argmax())
        if rng.random() < rate:
            cls = int(rng.choice([c for c in range(2, n_classes) if c != cls]))
        grown = binary_dilation(obj) if rng.random() < 0.5 else binary_erosion(obj)
        out[obj & ~grown] = 0
        out[grown] = cls
    return out


def class_histogram(class_map: np.ndarray, grid: int, n_classes: int) -> np.ndarray:
    """(grid², C) fraction of each class inside each patch of an (H, W) integer class map."""
    h, w = class_map.shape
    if h % grid or w % grid:
        raise InputError(f"a {h}×{w} class map does not tile into a {grid}×{grid} patch grid")
    onehot = np.eye(n_classes, dtype=np.float32)[class_map]
    return onehot.reshape(grid, h // grid, grid, w // grid, n_classes).mean(axis=(1, 3)).reshape(
        grid * grid, n_classes)


def resample_scores(maps: np.ndarray, grid: int) -> np.ndarray:
    """(C, h, w) per-class maps (DIFNet's layout) → (grid², C), area-resampled, rows sum to 1."""
    t = torch.from_numpy(np.asarray(maps, dtype=np.float32))[None]
    t = F.adaptive_avg_pool2d(t, grid) if t.shape[-1] >= grid else F.interpolate(
        t, size=(grid, grid), mode="bilinear", align_corners=False)
    t = t[0].clamp(min=0).reshape(t.shape[1], -1).T
    return (t / t.sum(1, keepdim=True).clamp(min=1e-8)).numpy()


def load_npy(folder: Path, sample_id: str, grid: int, n_classes: int) -> np.ndarray:
    path = Path(folder) / f"{sample_id}.npy"
    if not path.exists():
        raise InputError(f"segmentation map missing: {path} (expected one (C, h, w) .npy per "
                         "sample, named <sample_id>.npy)")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise InputError(f"segmentation map {path} is not a readable .npy file: {e}") from None
    if arr.ndim != 3 or arr.shape[0] != n_classes:
        raise InputError(f"segmentation map {path} has shape {arr.shape}; expected "
                         f"({n_classes}, h, w) in DIFNet's layout")
    return resample_scores(arr, grid)


def degraded_rate(source: str) -> float:
    """The error rate of a ``degraded:RATE`` source (a one-line error when malformed)."""
    try:
        rate = float(source.split(":", 1)[1])
    except (IndexError, ValueError):
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise InputError(f"--segmentation {source}: expected degraded:RATE with RATE in [0, 1], "
                         "e.g. degraded:0.2")
    return rate


def batch_segmentation(records: Sequence, all_records: Sequence, source: str, grid: int,
                       n_classes: int, seed: int = 0) -> Optional[torch.Tensor]:
    """(B, grid², C) stream for ``records`` (``all_records`` supplies ``shuffled`` partners)."""
    if source == "none":
        return None
    if source.startswith("degraded"):
        rate = degraded_rate(source)
        if any("instance_map" not in r.extra or r.semantic_map is None for r in records):
            raise InputError(f"--segmentation {source} needs exact semantic and instance maps "
                             "(synthetic data); use exact or npy:DIR here")
        return torch.from_numpy(np.stack([class_histogram(
            degrade(r.semantic_map, r.extra["instance_map"], rate, n_classes, seed, r.sample_id),
            grid, n_classes) for r in records]))
    if source.startswith("npy:"):
        rows = [load_npy(Path(source[4:]), r.sample_id, grid, n_classes) for r in records]
        return torch.from_numpy(np.stack(rows))
    if source.startswith("panoptic:"):
        from datasets.coco_panoptic import panoptic

        ann = panoptic(source[len("panoptic:"):])
        if ann.n_classes != n_classes:
            raise InputError(f"--segmentation {source}: the file has {ann.n_classes} classes, "
                             f"the model reads {n_classes}")
        if any("image_id" not in r.extra for r in records):
            raise InputError(f"--segmentation {source} needs COCO image ids (datasets vqav2, "
                             "vqahat)")
        return torch.from_numpy(np.stack([ann.histogram(r.extra["image_id"], grid)
                                          for r in records]))
    if source == "shuffled":
        pos = {r.sample_id: i for i, r in enumerate(all_records)}
        records = [all_records[(pos[r.sample_id] + 1) % len(all_records)] for r in records]
    elif source != "exact":
        raise InputError(f"unknown segmentation source {source!r}; use one of {', '.join(SOURCES)}")
    missing: List[str] = [r.sample_id for r in records if r.semantic_map is None]
    if missing:
        raise InputError(f"sample {missing[0]} has no semantic map; pass --segmentation npy:DIR "
                         "with precomputed maps")
    return torch.from_numpy(np.stack([class_histogram(r.semantic_map, grid, n_classes)
                                      for r in records]))


def absent_side_inputs(model, source: str, consistent: bool = True) -> Optional[dict]:
    """What a fused model's segmentation stream reads at a patch whose pixels a perturbation
    replaced by its substrate: the background class (class 0 of the synthetic data's semantic
    maps, exact, degraded or shuffled), or no class at all (an all-zero histogram: COCO panoptic
    and ``npy`` maps, whose unlabelled pixels count for no class); ``None`` for a model without
    the stream, the ``none`` source, or when ``consistent`` is false (the stream kept as the
    unperturbed image's: the earlier behaviour, for comparison)."""
    n_classes = model.side_input_classes("segmentation")
    if n_classes is None or source == "none" or not consistent:
        return None
    value = torch.zeros(n_classes)
    if not source.startswith(("panoptic:", "npy:")):
        value[0] = 1.0
    return {"segmentation": value}
