"""What the embedded PNP-VQA learns from: captions written from the scene description for the
patches a caption reads, and the (question, captions, answer) examples its answerer reads.

A caption describes the objects under the patches it was given, most-covered first, at most
two: ``"a picture of a large red circle"``, ``"a picture of a small blue square left of a large
red circle"`` (the relation of the first to the second along the axis on which they are further
apart), or ``"a picture of nothing"`` when no given patch lies on an object. The captioner's
patch draws mimic what it reads at test time: uniform draws, and draws concentrated on one or
two objects (as a good heatmap would) with a share on the rest of the image. The answerer's
examples come from uniform draws only (:func:`passages`): it never reads a context chosen by
the question's evidence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
import torch

from benchmark.models.pnp_tiny import PROMPT
from datasets import synthetic as syn

__all__ = ["CAPTION_WORDS", "PROMPT", "ScenePool", "build_scene_pool", "caption", "draw_patches",
           "passages", "patch_objects"]
#: the words captions use beyond the question vocabulary
CAPTION_WORDS = ("picture", "large", "small", "nothing")


@dataclass
class ScenePool:
    """Pre-generated scenes for the embedded PNP-VQA's training (kept out of the step loop)."""

    images: torch.Tensor  # (N, H, W, 3) uint8
    patch_objects: torch.Tensor  # (N, gh*gw) long: 1-based object under each patch, 0 = none
    patch_targets: torch.Tensor  # (N, gh*gw, 3) long: its colour / shape / size class
    objects: List[list]
    questions: List[str]
    answers: List[str]
    evidence: torch.Tensor  # (N, gh*gw) bool: patches touching an object the answer depends on


def patch_objects(instance_map: np.ndarray, patch: int) -> np.ndarray:
    """(gh·gw,) the object covering ≥ 25% of each patch (1-based, 0 = none), the rule of the
    ITM models' per-patch targets."""
    h = instance_map.shape[0] // patch
    blocks = instance_map.reshape(h, patch, h, patch).transpose(0, 2, 1, 3).reshape(h * h, -1)
    out = np.zeros(h * h, np.int64)
    for i, blk in enumerate(blocks):
        counts = np.bincount(blk.astype(np.int64))
        counts[0] = 0
        k = int(counts.argmax())
        if counts[k] * 4 >= blk.size:
            out[i] = k
    return out


def _make(args) -> tuple:
    from benchmark.training.labels import evidence_patches, patch_targets

    seed, split, index, size, patch = args
    s = syn.generate(seed, split, index, image_size=size)
    return (s.image, patch_objects(s.instance_map, patch), patch_targets(s, patch), s.objects,
            s.question, s.answer, evidence_patches(s.evidence_mask, patch))


def build_scene_pool(split: str, n: int, image_size: int, patch: int, seed: int,
                     progress: bool = True) -> ScenePool:
    """Generate ``n`` samples of ``split`` in two processes (the order is deterministic)."""
    import multiprocessing as mp

    from tqdm import tqdm

    jobs = [(seed, split, i, image_size, patch) for i in range(n)]
    with mp.get_context("fork").Pool(2) as workers:
        rows = list(tqdm(workers.imap(_make, jobs, chunksize=64), total=n, disable=not progress,
                         desc=f"generating {split}", unit="scene"))
    cols = list(zip(*rows))
    return ScenePool(*(torch.from_numpy(np.stack(c)) for c in cols[:3]), list(cols[3]),
                     list(cols[4]), list(cols[5]), torch.from_numpy(np.stack(cols[6])))


def _relation(a: syn.SceneObject, b: syn.SceneObject) -> str:
    dx, dy = a.x - b.x, a.y - b.y
    if abs(dx) >= abs(dy):
        return "left of" if dx < 0 else "right of"
    return "above" if dy < 0 else "below"


def _describe(o: syn.SceneObject) -> str:
    return f"a {o.size} {o.colour} {o.shape}"


def caption(objects: Sequence[syn.SceneObject], under: np.ndarray) -> str:
    """The caption (after the prompt) of patches whose objects are ``under`` (1-based, 0 =
    none): the two most-covered objects, ties broken left to right (then top to bottom)."""
    ids, counts = np.unique(under[under > 0], return_counts=True)
    order = sorted(zip(counts, ids), key=lambda c: (-c[0], objects[c[1] - 1].x,
                                                    objects[c[1] - 1].y))
    seen = [objects[int(k) - 1] for _, k in order[:2]]
    if not seen:
        return "nothing"
    if len(seen) == 1:
        return _describe(seen[0])
    return f"{_describe(seen[0])} {_relation(seen[0], seen[1])} {_describe(seen[1])}"


def draw_patches(rng: np.random.Generator, patch_objects: np.ndarray, k: int) -> np.ndarray:
    """``k`` patch indices without replacement: uniform, or (with probability 0.6) ∝ a weight
    of 1 on one or two random objects' patches and 0.05 elsewhere."""
    n = len(patch_objects)
    present = np.unique(patch_objects[patch_objects > 0])
    if len(present) == 0 or rng.random() < 0.4:
        return rng.choice(n, size=k, replace=False)
    focus = rng.choice(present, size=min(len(present), int(rng.integers(1, 3))), replace=False)
    w = np.where(np.isin(patch_objects, focus), 1.0, 0.05)
    return rng.choice(n, size=k, replace=False, p=w / w.sum())


def passages(rng: np.random.Generator, objects, patch_objects: np.ndarray,
             num_captions: int, k: int, rounds: int) -> List[str]:
    """What the answerer reads at test time, from uniform patch draws only (no draw has ever
    followed the question's evidence, as LAVIS's PNP-VQA is zero-shot): rounds of
    ``num_captions`` draws of ``k`` patches, each described from the scene (the pipeline's rule:
    a caption is dropped when it is part of one kept) until ``num_captions`` are distinct or
    ``rounds`` ran, then the distinct ones cycled to exactly ``num_captions`` passages
    (:func:`benchmark.models.pnp_vqa_pipeline.cycled`)."""
    from benchmark.models.pnp_vqa_pipeline import cycled

    n = len(patch_objects)
    found: List[str] = []
    for _ in range(rounds):
        for _ in range(num_captions):
            text = caption(objects, patch_objects[rng.choice(n, size=k, replace=False)])
            if len(found) < num_captions and not any(text in c for c in found):
                found.append(text)
        if len(found) >= num_captions:
            break
    return cycled(found, num_captions)
