"""The ``vqav2`` dataset: official VQA v2 questions and annotations over COCO images and instances.

``data_root`` holds, for ``split`` (``val`` by default; ``train`` likewise):

- ``v2_OpenEnded_mscoco_<split>2014_questions.json`` and ``v2_mscoco_<split>2014_annotations.json``
  (VQA v2: the question, its ``question_type`` and the 10 annotator answers);
- ``instances_<split>2014.json`` (COCO instances: RLE or polygon segmentations, category names);
- ``<split>2014/COCO_<split>2014_%012d.jpg`` (the images);
- optionally ``evidence.json``: ``{question_id: [COCO annotation ids]}``, the objects each question
  is about (written by :func:`datasets.export.export_vqav2`).

Regions. A question's ``target_mask`` is the union of the instances ``evidence.json`` lists for it.
For a question that ``evidence.json`` does not list (or without that file), it is the union of the
image's instances whose category name — or a plural or synonym of it
(``datasets/data/category_synonyms.txt``) — appears as a word (sequence) in the question; empty
when there are none, and the runner then excludes the sample from localisation metrics.
``distractor_mask`` (grounding control) is one instance of the same image outside the target,
preferring one of a target's category (lowest annotation id first); ``control_mask`` the
size-matched control (:mod:`datasets.control`). Both are empty when the target is (a question
with no known region has no known non-region either). Segmentations are polygons, uncompressed
or compressed RLE (pycocotools decodes all three); a crowd region (``iscrowd`` 1) joins a target
of its category but is never a distractor or control object (it is many objects under one mask);
target pixels are removed from both controls, since COCO instances overlap.

Images of any size and mode (grayscale, CMYK, palette) load as RGB at their native resolution,
the pointing tolerance per image. A question whose image file is missing keeps its rows, each
empty with the note "excluded: image missing (PATH)" (:class:`benchmark.core.errors.MissingImage`);
a run whose every image is missing stops with one line.

``semantic_map`` (fused models' segmentation stream) is built only when every category name of the
instances file is a class of :data:`datasets.synthetic.SEMANTIC_CLASSES` (the synthetic export):
0 background, the class index for each instance's pixels. Other category sets leave it ``None``
(pass precomputed maps with ``segmentation="npy:DIR"``).

JSON files are parsed and validated when the dataset is built; masks and images are decoded per
item. Every problem with the input raises :class:`benchmark.core.errors.InputError` with one line naming
the file and the fix. Accuracy is the official VQA accuracy (``exact_match = False``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from benchmark.core.errors import InputError, MissingImage
from datasets import register
from datasets.base import (Dataset, Record, answer_text, check_question_type, decode_rgb,
                           question_text)
from datasets.category_mentions import mentions, word_tokens
from datasets.coco_instances import CocoInstances
from datasets.control import matched_control
from datasets.files import data_root as root_folder
from datasets.files import by_id, list_of, read_json
from datasets.synthetic import SEMANTIC_CLASSES

RELEASE = "VQA / COCO"
EXPORT_FIX = ("put the official file in --data-root (or export the synthetic data with "
              "datasets.export.export_vqav2)")


@register("vqav2")
class VQAv2Dataset(Dataset):
    """VQA v2 + COCO in the official file formats (see the module docstring)."""

    name = "vqav2"
    exact_match = False  # official VQA accuracy
    question_file = "v2_OpenEnded_mscoco_{sub}_questions.json"
    annotation_file = "v2_mscoco_{sub}_annotations.json"

    def __init__(self, data_root: Optional[str] = None, split: str = "val", seed: int = 0,
                 **_: object) -> None:
        split = split or "val"
        self.split, self.seed = split, seed
        sub = f"{split}2014"
        qname, aname = self.question_file.format(sub=sub), self.annotation_file.format(sub=sub)
        iname = f"instances_{sub}.json"
        root = root_folder(data_root, self.name, f"{qname}, {aname}, {iname} and "
                           f"{sub}/COCO_{sub}_<image id>.jpg")
        self.data_root = root
        self.image_dir = root / sub
        self._image_pattern = f"COCO_{sub}_%012d.jpg"
        self._questions_path, self._answers_path = root / qname, root / aname
        self.instances = CocoInstances(root / iname, EXPORT_FIX)
        self._questions, self._answers = self._read_questions()
        self.instances.check(sorted({q["image_id"] for q in self._questions}, key=str))
        self._evidence = self._read_evidence(root / "evidence.json")
        names = set(self.instances.categories.values())
        self._semantic = bool(names) and names <= set(SEMANTIC_CLASSES[2:])

    def _read_questions(self) -> Tuple[List[dict], Dict[int, dict]]:
        """The questions in id order and each one's annotation, every id unique and known."""
        qpath, apath, ipath = self._questions_path, self._answers_path, self.instances.path
        questions = list_of(read_json(qpath, "VQA questions", EXPORT_FIX), "questions", qpath,
                            ("question_id", "image_id", "question"), "question", RELEASE)
        annotations = list_of(read_json(apath, "VQA annotations", EXPORT_FIX), "annotations",
                              apath, ("question_id", "answers", "question_type"), "annotation",
                              RELEASE)
        ann_by_q = by_id(annotations, "question_id", apath, "annotation")
        for qid, a in ann_by_q.items():
            if not isinstance(a["answers"], list) or not all(
                    isinstance(x, dict) and "answer" in x for x in a["answers"]):
                raise InputError(f"{apath}: annotation of question {qid} has malformed 'answers' "
                                 "(expected a list of {\"answer\": ...}) — re-download or "
                                 "regenerate it")
        by_q = by_id(questions, "question_id", qpath, "question")
        for qid, q in by_q.items():
            if qid not in ann_by_q:
                raise InputError(f"{apath} has no annotation for question {qid} of "
                                 f"{qpath} — use a split with answers (train or val)")
            check_question_type(q["question"], str(qpath), str(qid))
            for a in ann_by_q[qid]["answers"]:
                answer_text(a["answer"], f"{apath}: question {qid}")
            if q["image_id"] not in self.instances.images:
                raise InputError(f"{ipath} has no image {q['image_id']} (asked about by question "
                                 f"{qid}) — use the instances file of split {self.split}")
        return sorted(by_q.values(), key=lambda q: q["question_id"]), ann_by_q

    def _read_evidence(self, epath: Path) -> Optional[Dict[int, List[int]]]:
        """``evidence.json`` (question id → annotation ids of its image), or None without it."""
        if not epath.exists():
            return None
        raw = read_json(epath, "evidence", EXPORT_FIX)
        if not isinstance(raw, dict):
            raise InputError(f"{epath}: expected an object {{question_id: [annotation ids]}} "
                             "— regenerate it or delete it")
        evidence = {}
        images_of_q = {q["question_id"]: q["image_id"] for q in self._questions}
        for key, ids in raw.items():
            try:
                qid = int(key)
            except ValueError:
                raise InputError(f"{epath}: key {key!r} is not a question id — regenerate "
                                 "it or delete it") from None
            if not isinstance(ids, list) or not all(isinstance(x, int) for x in ids):
                raise InputError(f"{epath}: question {key} does not map to a list of "
                                 "annotation ids — regenerate it or delete it")
            for x in ids:
                if qid in images_of_q and self.instances.image_of_object.get(x) != \
                        images_of_q[qid]:
                    raise InputError(f"{epath}: question {key} lists annotation {x}, which is "
                                     f"not an instance of its image in {self.instances.path} — "
                                     "regenerate it or delete it")
            evidence[qid] = ids
        return evidence

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self._questions)

    def image_path(self, image_id: int) -> Path:
        return self.image_dir / (self._image_pattern % image_id)

    def missing_images(self) -> List[Tuple[str, Path]]:
        present: Dict[int, bool] = {}
        out = []
        for q in self._questions:
            iid = q["image_id"]
            if iid not in present:
                present[iid] = self.image_path(iid).is_file()
            if not present[iid]:
                out.append((str(q["question_id"]), self.image_path(iid)))
        return out

    def _load_image(self, image_id: int, question_id: int, family: str) -> np.ndarray:
        path = self.image_path(image_id)
        if not path.is_file():
            raise MissingImage(path, question_id, family, f"put the COCO {self.split}2014 "
                               f"images in {self.image_dir}")
        return decode_rgb(path, f"question {question_id}")

    def _targets(self, q: dict, objs: List[dict]) -> tuple:
        qid = q["question_id"]
        if self._evidence is not None and qid in self._evidence:
            wanted = set(self._evidence[qid])
            return [o for o in objs if o["id"] in wanted], "evidence"
        words = word_tokens(q["question"])
        named = {cid for cid, name in self.instances.categories.items() if mentions(words, name)}
        return [o for o in objs if o["category_id"] in named], "category_name"

    def _regions(self, q: dict, objs: List[dict], masks: Dict[int, np.ndarray],
                 shape: Tuple[int, int]) -> dict:
        """The question's target, distractor and size-matched control, with their object ids.

        A crowd region (iscrowd 1) is many objects under one mask: part of a target, never a
        control object nor matched by one; target pixels are taken out of the controls (COCO
        instances overlap, and a point in both would count for both)."""
        targets, source = self._targets(q, objs)
        target_ids = {o["id"] for o in targets}
        target = np.zeros(shape, bool)
        for o in targets:
            target |= masks[o["id"]]
        crowds = {o["id"] for o in objs if o.get("iscrowd", 0)}
        distractor, distractor_id = np.zeros(shape, bool), None
        if target.any():
            others = [o for o in objs if o["id"] not in target_ids | crowds
                      and (masks[o["id"]] & ~target).any()]
            target_cats = {o["category_id"] for o in targets}
            same = [o for o in others if o["category_id"] in target_cats]
            pick = (same or others or [None])[0]
            if pick is not None:
                distractor, distractor_id = masks[pick["id"]] & ~target, pick["id"]
        control, control_ids = matched_control(masks, sorted(target_ids - crowds), crowds,
                                               self.seed, str(q["question_id"]), shape)
        return {"target_mask": target, "distractor_mask": distractor,
                "control_mask": control & ~target,
                "extra": {"target_source": source, "target_annotation_ids": sorted(target_ids),
                          "distractor_annotation_id": distractor_id,
                          "control_annotation_ids": sorted(control_ids)}}

    def _semantic_map(self, objs: List[dict], masks: Dict[int, np.ndarray],
                      shape: Tuple[int, int]) -> Optional[np.ndarray]:
        if not self._semantic:
            return None
        semantic = np.zeros(shape, np.uint8)
        for o in objs:
            semantic[masks[o["id"]]] = SEMANTIC_CLASSES.index(
                self.instances.categories[o["category_id"]])
        return semantic

    def __getitem__(self, i: int) -> Record:
        if not 0 <= i < len(self):
            raise IndexError(i)
        q = self._questions[i]
        qid, iid = q["question_id"], q["image_id"]
        ann = self._answers[qid]
        family = str(ann["question_type"])
        question = question_text(q["question"], str(self._questions_path), str(qid), family)
        answers = [answer_text(a["answer"], f"{self._answers_path}: question {qid}")
                   for a in ann["answers"]]
        shape = self.instances.size(iid)
        image = self._load_image(iid, qid, family)
        if image.shape[:2] != shape:
            raise InputError(f"image {self.image_path(iid)} is {image.shape[1]}×{image.shape[0]}"
                             f" but {self.instances.path} says {shape[1]}×{shape[0]} — use "
                             "matching images and annotations")
        objs = self.instances.objects(iid)
        masks = self.instances.masks(iid)
        regions = self._regions(q, objs, masks, shape)
        return Record(
            sample_id=str(qid), image=image, question=question, answers=answers, family=family,
            semantic_map=self._semantic_map(objs, masks, shape),
            target_mask=regions["target_mask"], distractor_mask=regions["distractor_mask"],
            control_mask=regions["control_mask"],
            extra={"image_id": iid, "question_id": qid, "answer_type": ann.get("answer_type", ""),
                   **regions["extra"]})

    def describe(self) -> dict:
        return {"name": self.name, "split": self.split, "data_root": str(self.data_root),
                "n": len(self), "evidence": self._evidence is not None}
