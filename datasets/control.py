"""The size-matched grounding control: as many non-target objects as the target has, of the
closest sizes, chosen by a seed.

A single distractor object against a target of one to three objects is biased by size: a point
that ignores the question hits a larger region more often. The control region instead holds one
object per target object, each the remaining candidate whose area is closest to that target
object's (|log area ratio|), candidates visited in a seeded order so that equal areas are not
resolved by annotation order. Objects the answer depends on (the evidence) are never candidates.
A sample with fewer candidates than target objects has no control (an empty mask) and, like a
sample without a target, is left out of the paired target − control test.
"""
from __future__ import annotations

from typing import Dict, Hashable, Iterable, List, Tuple

import numpy as np

from benchmark.core.seeds import sample_rng


def matched_control(objects: Dict[Hashable, np.ndarray], targets: Iterable[Hashable],
                    exclude: Iterable[Hashable], seed: int, sample_id: str,
                    shape: Tuple[int, int]) -> Tuple[np.ndarray, List[Hashable]]:
    """(mask, chosen keys): the control region for one sample.

    ``objects`` maps an object key to its bool mask of the image's ``shape`` (H, W) — possibly
    none: an image with no annotated object has no control; ``targets`` are the keys of the
    target objects; ``exclude`` further keys that may not be chosen (evidence objects).
    Deterministic in (``seed``, ``sample_id``).
    """
    targets = [t for t in targets if objects[t].any()]
    banned = set(targets) | set(exclude)
    cands = [k for k in objects if k not in banned and objects[k].any()]
    if not targets or len(cands) < len(targets):
        return np.zeros(shape, bool), []
    rng = sample_rng(seed, sample_id, 7)
    cands = [cands[i] for i in rng.permutation(len(cands))]
    area = {k: float(objects[k].sum()) for k in list(cands) + targets}
    chosen: List[Hashable] = []
    for t in sorted(targets, key=lambda t: -area[t]):  # largest first: it has the fewest matches
        gaps = [abs(np.log(area[c] / area[t])) for c in cands]
        chosen.append(cands.pop(int(np.argmin(gaps))))  # argmin: first of equal gaps (seeded)
    mask = np.zeros(shape, bool)
    for k in chosen:
        mask |= objects[k]
    return mask, chosen


def instance_objects(instance_map: np.ndarray) -> Dict[int, np.ndarray]:
    """Object id → mask for an instance map (0 = no object)."""
    return {int(k): instance_map == k for k in np.unique(instance_map) if k > 0}


def ids_in(instance_map: np.ndarray, mask: np.ndarray) -> List[int]:
    """Object ids of ``instance_map`` that ``mask`` covers."""
    return sorted(int(k) for k in np.unique(instance_map[mask]) if k > 0)
