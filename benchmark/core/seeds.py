"""Per-sample seeds: every random choice about one sample (tie-break order, control objects,
segmentation errors) is drawn from (run seed, sample id, purpose), so it is the same for every
method and model, independent of batch order, and different across purposes."""
from __future__ import annotations

import zlib

import numpy as np


def sample_rng(seed: int, sample_id: str, *purpose: int) -> np.random.Generator:
    """A generator seeded with (run seed, crc32 of ``sample_id``, *purpose)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, zlib.crc32(str(sample_id).encode()),
                                  *purpose])
