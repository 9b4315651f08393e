"""Tie handling shared by every ordering metric.

A map with equal values (all-zero patches, a constant map) must not be ordered by patch index:
top-left first would reward whatever lies top-left. Ties are broken by a random permutation of
the patches seeded by (run seed, sample id), so every method sees the same permutation on a
given sample and a constant map is ordered like the ``random`` baseline.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from benchmark.core.seeds import sample_rng


def tie_break(sample_ids: Sequence[str], n: int, seed: int) -> torch.Tensor:
    """(B, n) long: one seeded permutation of the n patches per sample."""
    return torch.from_numpy(np.stack([sample_rng(seed, s).permutation(n)
                                      for s in sample_ids]).astype(np.int64))


def record_ids(records: Sequence, b: int) -> list:
    """Sample ids of ``records``, or ``row-i`` placeholders when a caller passes none."""
    return [r.sample_id for r in records] if len(records) == b else [f"row-{i}" for i in range(b)]


def patch_order(maps: torch.Tensor, perm: Optional[torch.Tensor] = None) -> torch.Tensor:
    """(B, N) patch indices, most relevant first; equal values follow ``perm`` (B, N), the
    sample's seeded permutation (:func:`tie_break`); without ``perm``, the seed-0 permutation of
    placeholder ids."""
    flat = maps.reshape(maps.shape[0], -1)
    if perm is None:
        perm = tie_break(record_ids((), flat.shape[0]), flat.shape[1], 0)
    perm = perm.to(flat.device)
    permuted = flat.gather(1, perm)
    return perm.gather(1, torch.sort(permuted, dim=1, descending=True, stable=True).indices)


def ranks(order: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`patch_order`: (B, N) rank of each patch (0 = most relevant)."""
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return rank


def tie_fraction(heatmap: np.ndarray) -> float:
    """Share of the map's patches whose value at least one other patch shares."""
    flat = np.asarray(heatmap, dtype=np.float64).ravel()
    _, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
    return float((counts[inverse] > 1).mean())


def max_tied(heatmap: np.ndarray) -> float:
    """1.0 when the map's maximum is shared by two or more patches (the pointing game's first
    maximum then depends on raster order), else 0.0."""
    flat = np.asarray(heatmap, dtype=np.float64).ravel()
    return float(np.count_nonzero(flat == flat.max()) > 1)
