"""The shape of metrics that need the model (perturbation curves, downstream VQA accuracy)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from benchmark.models.protocol import VLModel


@dataclass
class CurveScores:
    """Per-sample scores of one batch: ``values`` (B,), optional curves (B, P) sampled at ``x``."""

    values: np.ndarray
    x: Optional[np.ndarray] = None
    curves: Optional[np.ndarray] = None


class ModelMetric:
    """A metric that re-runs the model: ``metric(model, images, questions, maps, records, **kw)``.

    ``images`` (B, 3, H, W) preprocessed, ``maps`` (B, gh, gw) from a method, ``records`` the
    dataset records (answers, masks). ``higher_is_better`` is reported in the summary.
    """

    kind = "model"
    higher_is_better = True
    needs_answers = False

    def __call__(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                 maps: torch.Tensor, records: Sequence, **kwargs) -> CurveScores:
        raise NotImplementedError


def chunked(fn, n: int, chunk: int):
    """Concatenate ``fn(start, stop)`` over ``range(0, n, chunk)`` (bounded memory batches)."""
    return torch.cat([fn(s, min(n, s + chunk)) for s in range(0, n, chunk)])
