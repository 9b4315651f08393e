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
empty with the note "excluded: image missing (PATH)" (:class:`benchmark.errors.MissingImage`);
a run whose every image is missing stops with one line.

``semantic_map`` (fused models' segmentation stream) is built only when every category name of the
instances file is a class of :data:`datasets.synthetic.SEMANTIC_CLASSES` (the synthetic export):
0 background, the class index for each instance's pixels. Other category sets leave it ``None``
(pass precomputed maps with ``segmentation="npy:DIR"``).

JSON files are parsed and validated when the dataset is built; masks and images are decoded per
item. Every problem with the input raises :class:`benchmark.errors.InputError` with one line naming
the file and the fix. Accuracy is the official VQA accuracy (``exact_match = False``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from benchmark.errors import InputError, MissingImage
from datasets import register
from datasets.base import Dataset, Record, decode_rgb
from datasets.category_mentions import mentions, word_tokens
from datasets.control import matched_control
from datasets.files import data_root as root_folder
from datasets.files import list_of, read_json
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

        qpath, apath, ipath = root / qname, root / aname, root / iname
        self._questions_path = qpath
        self._instances_path = ipath
        questions = list_of(read_json(qpath, "VQA questions", EXPORT_FIX), "questions", qpath,
                            ("question_id", "image_id", "question"), "question", RELEASE)
        annotations = list_of(read_json(apath, "VQA annotations", EXPORT_FIX), "annotations", apath,
                              ("question_id", "answers", "question_type"), "annotation", RELEASE)
        inst = read_json(ipath, "COCO instances", EXPORT_FIX)
        images = list_of(inst, "images", ipath, ("id", "height", "width"), "image", RELEASE)
        objects = list_of(inst, "annotations", ipath,
                          ("id", "image_id", "category_id", "segmentation"), "annotation",
                          RELEASE)
        categories = list_of(inst, "categories", ipath, ("id", "name"), "category", RELEASE)

        ann_by_q = {}
        for i, a in enumerate(annotations):
            if not isinstance(a["answers"], list) or not all(
                    isinstance(x, dict) and "answer" in x for x in a["answers"]):
                raise InputError(f"{apath}: annotation {i} has malformed 'answers' (expected a "
                                 "list of {\"answer\": ...}) — re-download or regenerate it")
            ann_by_q[a["question_id"]] = a
        self._categories = {c["id"]: str(c["name"]) for c in categories}
        self._images = {im["id"]: im for im in images}
        self._objects_by_image: Dict[int, List[dict]] = {}
        object_ids = {}
        for o in objects:
            if o["category_id"] not in self._categories:
                raise InputError(f"{ipath}: annotation {o['id']} has unknown category_id "
                                 f"{o['category_id']} — re-download or regenerate it")
            self._objects_by_image.setdefault(o["image_id"], []).append(o)
            object_ids[o["id"]] = o["image_id"]
        for objs in self._objects_by_image.values():
            objs.sort(key=lambda o: o["id"])

        self._questions = sorted(questions, key=lambda q: q["question_id"])
        for q in self._questions:
            if q["question_id"] not in ann_by_q:
                raise InputError(f"{apath} has no annotation for question {q['question_id']} of "
                                 f"{qpath} — use a split with answers (train or val)")
            if q["image_id"] not in self._images:
                raise InputError(f"{ipath} has no image {q['image_id']} (asked about by question "
                                 f"{q['question_id']}) — use the instances file of split {split}")
        self._answers = ann_by_q

        epath = root / "evidence.json"
        self._evidence: Optional[Dict[int, List[int]]] = None
        if epath.exists():
            raw = read_json(epath, "evidence", EXPORT_FIX)
            if not isinstance(raw, dict):
                raise InputError(f"{epath}: expected an object {{question_id: [annotation ids]}} "
                                 "— regenerate it or delete it")
            self._evidence = {}
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
                    if qid in images_of_q and object_ids.get(x) != images_of_q[qid]:
                        raise InputError(f"{epath}: question {key} lists annotation {x}, which is "
                                         f"not an instance of its image in {ipath} — regenerate "
                                         "it or delete it")
                self._evidence[qid] = ids

        names = set(self._categories.values())
        self._semantic = bool(names) and names <= set(SEMANTIC_CLASSES[2:])

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

    def _decode(self, obj: dict, h: int, w: int) -> np.ndarray:
        from pycocotools import mask as mask_utils

        seg = obj["segmentation"]
        if isinstance(seg, list) and not seg:  # no polygon at all: an empty instance
            return np.zeros((h, w), bool)
        try:
            if isinstance(seg, list):  # polygons
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            elif isinstance(seg, dict) and isinstance(seg.get("counts"), list):  # uncompressed RLE
                rle = mask_utils.frPyObjects(seg, h, w)
            else:  # compressed RLE
                rle = dict(seg)
                if isinstance(rle.get("counts"), str):
                    rle["counts"] = rle["counts"].encode("ascii")
            m = mask_utils.decode(rle)
        except Exception as e:  # pycocotools raises assorted errors on bad segmentations
            raise InputError(f"{self._instances_path}: annotation {obj['id']} has an undecodable "
                             f"segmentation ({e}) — re-download or regenerate it") from None
        if m.ndim == 3:
            m = m.any(axis=2)
        if m.shape != (h, w):
            raise InputError(f"{self._instances_path}: annotation {obj['id']} decodes "
                             f"to {m.shape}, its image is {h}×{w} — re-download or regenerate it")
        return m.astype(bool)

    def _targets(self, q: dict, objs: List[dict]) -> tuple:
        qid = q["question_id"]
        if self._evidence is not None and qid in self._evidence:
            wanted = set(self._evidence[qid])
            return [o for o in objs if o["id"] in wanted], "evidence"
        words = word_tokens(q["question"])
        named = {cid for cid, name in self._categories.items() if mentions(words, name)}
        return [o for o in objs if o["category_id"] in named], "category_name"

    def __getitem__(self, i: int) -> Record:
        if not 0 <= i < len(self):
            raise IndexError(i)
        q = self._questions[i]
        ann = self._answers[q["question_id"]]
        meta = self._images[q["image_id"]]
        h, w = int(meta["height"]), int(meta["width"])
        image = self._load_image(q["image_id"], q["question_id"], ann["question_type"])
        if image.shape[:2] != (h, w):
            raise InputError(f"image {self.image_path(q['image_id'])} is {image.shape[1]}×"
                             f"{image.shape[0]} but {self._instances_path} says {w}×{h} "
                             "— use matching images and annotations")
        objs = self._objects_by_image.get(q["image_id"], [])
        targets, source = self._targets(q, objs)
        target_ids = {o["id"] for o in targets}
        masks = {o["id"]: self._decode(o, h, w) for o in objs}
        target = np.zeros((h, w), bool)
        for o in targets:
            target |= masks[o["id"]]
        # a crowd region (iscrowd 1) is many objects under one mask: part of a target, never a
        # control object nor matched by one; target pixels are taken out of the controls
        # (COCO instances overlap, and a point in both would count for both)
        crowds = {o["id"] for o in objs if o.get("iscrowd", 0)}
        distractor = np.zeros((h, w), bool)
        distractor_id = None
        if target.any():
            others = [o for o in objs if o["id"] not in target_ids | crowds
                      and (masks[o["id"]] & ~target).any()]
            target_cats = {o["category_id"] for o in targets}
            same = [o for o in others if o["category_id"] in target_cats]
            pick = (same or others or [None])[0]
            if pick is not None:
                distractor, distractor_id = masks[pick["id"]] & ~target, pick["id"]
        control, control_ids = matched_control(masks, sorted(target_ids - crowds), crowds,
                                               self.seed, str(q["question_id"]))
        control = control & ~target
        semantic = None
        if self._semantic:
            semantic = np.zeros((h, w), np.uint8)
            for o in objs:
                cls = SEMANTIC_CLASSES.index(self._categories[o["category_id"]])
                semantic[masks[o["id"]]] = cls
        return Record(
            sample_id=str(q["question_id"]), image=image, question=str(q["question"]),
            answers=[str(a["answer"]) for a in ann["answers"]], family=str(ann["question_type"]),
            target_mask=target, distractor_mask=distractor, semantic_map=semantic,
            control_mask=control,
            extra={"image_id": q["image_id"], "question_id": q["question_id"],
                   "answer_type": ann.get("answer_type", ""), "target_source": source,
                   "target_annotation_ids": sorted(target_ids),
                   "distractor_annotation_id": distractor_id,
                   "control_annotation_ids": sorted(control_ids)})

    def describe(self) -> dict:
        return {"name": self.name, "split": self.split, "data_root": str(self.data_root),
                "n": len(self), "evidence": self._evidence is not None}
