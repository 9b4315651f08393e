"""The ``synthetic`` dataset: the generator of :mod:`datasets.synthetic` behind the loader API."""
from __future__ import annotations

from functools import lru_cache

from datasets import register
from datasets import synthetic as syn
from benchmark.core.errors import InputError
from benchmark.core.maps import default_tolerance
from datasets.base import Dataset, Record
from datasets.control import ids_in, instance_objects, matched_control


@register("synthetic")
class SyntheticDataset(Dataset):
    """Generated scenes; ``split`` in train/val/test; ``size`` questions (default: the split's)."""

    name = "synthetic"
    exact_match = True
    # Large flat-coloured objects stay recognisable under RISE's blur scaled to 96 px (σ ≈ 2 px):
    # the match probability of the blurred image is already ~0.9 of the full one, so insertion
    # starts from the mean image, which holds no object.
    insertion_start = "mean"

    def pointing_tolerance(self, image_side: int) -> float:
        """Generated scenes are drawn at the model's input size (96 px) rather than photographed
        at ~500 px: TorchRay's 15 px are scaled from a 224 px side (6.43 px at 96 px)."""
        return default_tolerance(image_side)

    def __init__(self, split: str = "test", seed: int = 0, size: int | None = None,
                 image_size: int = 96, **_: object) -> None:
        if split not in syn.SPLITS:
            raise InputError(f"unknown split {split!r} for synthetic; use one of {', '.join(syn.SPLITS)}")
        self.split, self.seed, self.image_size = split, seed, image_size
        self.size = size if size is not None else min(syn.DEFAULT_SPLIT_SIZES[split], 100000)

    def __len__(self) -> int:
        return self.size

    @lru_cache(maxsize=4096)
    def __getitem__(self, i: int) -> Record:
        if not 0 <= i < self.size:
            raise IndexError(i)
        s = syn.generate(self.seed, self.split, i, image_size=self.image_size)
        control, _ = matched_control(instance_objects(s.instance_map),
                                     ids_in(s.instance_map, s.target_mask),
                                     ids_in(s.instance_map, s.evidence_mask), self.seed,
                                     s.sample_id, s.instance_map.shape)
        return Record(s.sample_id, s.image, s.question, s.answers, s.family, s.target_mask,
                      s.distractor_mask, s.semantic_map, s.evidence_mask,
                      extra={"instance_map": s.instance_map, "objects": s.objects,
                             "program": s.program, "itm_label": s.itm_label,
                             "without": s.without},
                      control_mask=control)

    def describe(self) -> dict:
        return {"name": self.name, "split": self.split, "seed": self.seed, "n": len(self),
                "image_size": self.image_size, "generator_version": syn.GENERATOR_VERSION}
