"""The ``vqahat`` dataset: VQA-HAT's human attention maps (Das et al., EMNLP 2016) over VQA v1
questions and COCO images.

``data_root`` holds, for ``split`` (``val`` by default; ``train`` likewise):

- ``vqahat_<split>/<question_id>_<k>.png``: the human attention maps as released (k = 1, 2, …:
  one file per annotator; grayscale or RGB, read as luminance; any size);
- VQA v1's ``OpenEnded_mscoco_<split>2014_questions.json`` and ``mscoco_<split>2014_annotations.json``;
- COCO's ``instances_<split>2014.json`` and ``<split>2014/COCO_<split>2014_%012d.jpg``.

The questions are those VQA v1 questions that have at least one map, in question-id order. Their
images, answers and regions are those of :mod:`datasets.loader_vqav2` (the instances whose
category the question names); ``extra["human_map"]`` is the mean of the question's maps, each
resampled to 14 × 14 first (:func:`benchmark.core.maps.to_human_grid`), which
:class:`metrics.human_attention.HumanRankCorrelation` compares each method's map with.
The inter-human reference rows (:meth:`VQAHATDataset.reference_rows`: model ``human``, method
``inter_human``) give, per question with two or more maps, the mean rank correlation between
two annotators' maps (Das et al. report 0.623 on val).
"""
from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from benchmark.core.errors import InputError
from benchmark.core.maps import rank_correlation, to_human_grid
from datasets import register
from datasets.base import Record, decode_rgb
from datasets.loader_vqav2 import VQAv2Dataset

MAP_NAME = re.compile(r"^(\d+)_(\d+)\.png$")


@register("vqahat")
class VQAHATDataset(VQAv2Dataset):
    """VQA-HAT human attention maps joined to VQA v1 and COCO (see the module docstring)."""

    name = "vqahat"
    question_file = "OpenEnded_mscoco_{sub}_questions.json"
    annotation_file = "mscoco_{sub}_annotations.json"
    references = ("human_map",)

    def __init__(self, data_root: Optional[str] = None, split: str = "val", seed: int = 0,
                 **_: object) -> None:
        super().__init__(data_root=data_root, split=split, seed=seed)
        self.map_dir = self.data_root / f"vqahat_{self.split}"
        if not self.map_dir.is_dir():
            raise InputError(f"missing folder {self.map_dir} — unpack VQA-HAT's "
                             f"vqahat_{self.split}.zip into --data-root")
        maps: Dict[int, List[Path]] = {}
        for path in sorted(self.map_dir.iterdir()):
            m = MAP_NAME.match(path.name)
            if m:
                maps.setdefault(int(m.group(1)), []).append(path)
        self._maps = {q: sorted(ps, key=lambda p: int(MAP_NAME.match(p.name).group(2)))
                      for q, ps in maps.items()}
        self._questions = [q for q in self._questions if q["question_id"] in self._maps]
        if not self._questions:
            raise InputError(f"no question of {self._questions_path} has a map in "
                             f"{self.map_dir} (expected <question_id>_<k>.png) — use VQA v1's "
                             "question files with VQA-HAT")

    def human_maps(self, question_id: int) -> List[np.ndarray]:
        """Each annotator's map for the question, on the 14 × 14 grid, in [0, 1]."""
        return [to_human_grid(decode_rgb(p, f"question {question_id}").mean(axis=2) / 255.0)
                for p in self._maps[question_id]]

    def __getitem__(self, i: int) -> Record:
        record = super().__getitem__(i)
        maps = self.human_maps(self._questions[i]["question_id"])
        record.extra["human_map"] = np.mean(maps, axis=0)
        record.extra["annotator_maps"] = maps
        return record

    def reference_rows(self, records: Sequence[Record]) -> List[dict]:
        """The inter-human reference, one row per question with two or more maps: the mean rank
        correlation between two annotators' maps of it (every pair; a constant map's pairs left
        out), as model ``human`` and method ``inter_human`` of ``human_rank_corr``."""
        rows = []
        for r in records:
            maps = r.extra["annotator_maps"]
            if len(maps) < 2:
                continue
            rhos = [rank_correlation(a, b) for a, b in itertools.combinations(maps, 2)]
            rhos = [x for x in rhos if np.isfinite(x)]
            rows.append({"model": "human", "method": "inter_human", "sample_id": r.sample_id,
                         "question_type": r.family, "correct": None, "metric": "human_rank_corr",
                         "region": "", "value": float(np.mean(rhos)) if rhos else None,
                         "note": "" if rhos else "undefined (constant human maps)"})
        return rows
