"""The embedded default dataset: generated CLEVR-like scenes with questions and exact masks.

Every sample is one image and one question, generated from ``numpy.random.default_rng((seed,
split, index))`` so any sample can be rebuilt alone, on any machine, bit for bit. Scenes hold 3–6
objects (3 shapes × 4 colours × 2 sizes) on a textured background with grey clutter that no
question asks about. Seven question families are generated, each keeping a *distractor*: an
object that shares an attribute with the question's target but is not what the question asks
about, so that "pointing at the target" differs from "pointing at an object".

Masks are rasterised with numpy from the same geometry as the pixels, so they are exact:
``target_mask`` (what the question is about: the objects of its program's last step, CLEVR-XAI's
"GT Unique" — the queried object, every counted object, and *both* objects of a comparison or a
relation check, which the question is about symmetrically), ``evidence_mask`` (every object the
answer depends on: also the anchor of a spatial relation), ``distractor_mask`` (the near-miss
object, for the grounding control).

Version history: 1.1 — targets of ``compare`` and ``relation_check`` are both objects (1.0: the
first one only); images, questions and answers unchanged.

``Sample.without(k)`` re-renders the scene without object k (background, clutter and every
other object unchanged), the counterfactual behind the ``object_faithfulness`` metrics.

``semantic_map`` holds shape classes only (colour is left out on purpose: the fused model's
segmentation stream then carries shape but not colour).

Scenes (vocabulary, objects, rendering) are built in :mod:`datasets.scenes`, questions in
:mod:`datasets.scene_questions`; this module assembles a sample.

Bump :data:`GENERATOR_VERSION` whenever output changes; ``tests/datasets/test_synthetic.py`` pins hashes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from datasets.scene_questions import BUILDERS, hard_negative, referents_exist
from datasets.scenes import (ANSWERS, COLOURS, FAMILIES, OPPOSITE, RELATIONS, SEMANTIC_CLASSES,
                             SHAPES, SIZES, SceneObject, place_objects, render, vocabulary)

__all__ = ["ANSWERS", "COLOURS", "DEFAULT_SPLIT_SIZES", "FAMILIES", "GENERATOR_VERSION",
           "OPPOSITE", "RELATIONS", "SEMANTIC_CLASSES", "SHAPES", "SIZES", "SPLITS", "Sample",
           "SceneObject", "generate", "vocabulary"]

GENERATOR_VERSION = "1.1"
SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_SPLIT_SIZES = {"train": 10**9, "val": 500, "test": 600}  # test: ≥ 500 with a target region


@dataclass
class Sample:
    """One (image, question) pair with everything the metrics need."""

    sample_id: str
    image: np.ndarray  # (H, W, 3) uint8
    question: str
    answer: str
    family: str
    itm_label: int  # 1 when every object the question mentions exists in the image
    itm_negative: Optional[str]  # a hard negative: one attribute swapped so no object matches
    target_mask: np.ndarray  # (H, W) bool
    evidence_mask: np.ndarray
    distractor_mask: np.ndarray
    instance_map: np.ndarray  # (H, W) int16, 0 = background/clutter, k = objects[k-1]
    semantic_map: np.ndarray  # (H, W) uint8, indices into SEMANTIC_CLASSES
    objects: List[SceneObject]
    program: Dict[str, object] = field(default_factory=dict)
    background: Optional[np.ndarray] = None  # (H, W, 3) uint8: the scene before any object
    background_semantic: Optional[np.ndarray] = None  # its semantic map (background, clutter)

    def without(self, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """(image, semantic map) of the same scene re-rendered without object ``k`` (1-based, as
        in ``instance_map``): its pixels show the background and clutter that were drawn under
        it; every other pixel is unchanged (objects never overlap), so the change is exact."""
        gone = self.instance_map == k
        image, sem = self.image.copy(), self.semantic_map.copy()
        image[gone] = self.background[gone]
        sem[gone] = self.background_semantic[gone]
        return image, sem

    @property
    def answers(self) -> List[str]:
        """Ten annotator answers, VQA-style (all agree on generated data)."""
        return [self.answer] * 10


def _mask_of(inst: np.ndarray, objs: Sequence[SceneObject], chosen: Sequence[SceneObject]) -> np.ndarray:
    ids = [objs.index(o) + 1 for o in chosen]
    return np.isin(inst, ids) if ids else np.zeros(inst.shape, bool)


def generate(seed: int, split: str, index: int, image_size: int = 96,
             family: Optional[str] = None) -> Sample:
    """Build sample ``index`` of ``split``: deterministic in ``(seed, split, index, image_size)``.

    The family cycles through :data:`FAMILIES` by index (balanced families) unless given.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    rng = np.random.default_rng((seed, SPLITS[split], index))
    family = family or FAMILIES[index % len(FAMILIES)]
    margin = 4.0 * image_size / 96
    want_yes = bool(rng.random() < 0.5)  # drawn once so yes/no answers stay balanced
    for _ in range(1000):
        objs = place_objects(rng, image_size)
        built = BUILDERS[family](rng, objs, margin, want_yes)
        if built is None:
            continue
        question, answer, targets, evidence, distractor, program = built
        negative = hard_negative(rng, question, objs, program)
        if negative is None and family != "exist":
            continue
        break
    else:  # pragma: no cover - the builders succeed within a few tries
        raise RuntimeError(f"could not generate a {family} question for {split}/{index}")
    img, inst, sem, background, background_sem = render(rng, image_size, objs)
    label = int(referents_exist(objs, program))
    return Sample(
        sample_id=f"{split}-{index:06d}", image=img, question=question, answer=answer,
        family=family, itm_label=label, itm_negative=negative if label else None,
        target_mask=_mask_of(inst, objs, targets), evidence_mask=_mask_of(inst, objs, evidence),
        distractor_mask=_mask_of(inst, objs, [distractor]) if distractor else np.zeros_like(inst, bool),
        instance_map=inst, semantic_map=sem, objects=list(objs),
        program={**program, "family": family, "answer": answer},
        background=background, background_semantic=background_sem,
    )
