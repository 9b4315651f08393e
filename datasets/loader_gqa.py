"""The ``gqa`` dataset: GQA's balanced questions over its scene graphs (Hudson & Manning 2019).

``data_root`` holds, for ``split`` (``val`` by default; ``train`` likewise — the test splits
publish no scene graphs):

- ``{split}_balanced_questions.json``: question id → ``imageId``, ``question``, ``answer``,
  ``types`` (``structural``, ``semantic``, ``detailed``), ``annotations`` (``question``,
  ``answer``, ``fullAnswer``: token span → scene-graph object id; a value may list several ids,
  comma-separated) and ``semantic`` (the program; read for GQA's "scene" rule);
- ``{split}_sceneGraphs.json``: image id → ``width``, ``height``, ``objects`` (object id →
  ``name``, ``x``, ``y``, ``w``, ``h``);
- ``images/{imageId}.jpg``.

Regions (boxes, at the image's native resolution). ``target_mask``: the union of the boxes of
the objects the question's words point to (``annotations.question``); ``evidence_mask``: those
and the objects the answer and full answer point to (``annotations.answer`` and
``.fullAnswer``), a region of its own in every localisation metric; ``distractor_mask``: one
object not referenced, preferring one named like a target object (lowest id first), minus the
target's pixels; ``control_mask``: the size-matched control over the unreferenced objects
(:mod:`datasets.control`), minus the target's pixels (boxes overlap). A question whose words
point to no object (e.g. about the whole scene) has empty regions and is excluded from the
localisation metrics. ``extra["gqa_regions"]`` keeps GQA's own grounding regions (question and
full-answer boxes, and the whole image when the program reads the scene) for
:class:`metrics.grounding.GqaGrounding`.

Question families are GQA's structural types (verify, query, choose, logical, compare); the
semantic and detailed types are in ``extra``. Answers are scored by exact match after the VQA
answer processing of both sides (GQA's own script compares raw strings; its answers are lower
case words, so the two agree on GQA's answers).
"""
from __future__ import annotations

import math
from numbers import Real
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from benchmark.core.errors import InputError, MissingImage
from datasets import register
from datasets.base import (Dataset, Record, answer_text, check_question_type, decode_rgb,
                           question_text)
from datasets.control import matched_control
from datasets.files import data_root as root_folder
from datasets.files import read_json, require

RELEASE = "GQA"
QUESTION_KEYS = ("imageId", "question", "answer", "types", "annotations")
OBJECT_KEYS = ("name", "x", "y", "w", "h")
POINTERS = ("question", "answer", "fullAnswer")


def _check_graph(graph, path: Path, image_id: str) -> None:
    """A scene graph has a positive integer size and objects with numeric boxes."""
    require(graph, ("width", "height", "objects"), path, f"scene graph {image_id}", RELEASE)
    if not all(isinstance(graph[k], int) and not isinstance(graph[k], bool) and graph[k] > 0
               for k in ("width", "height")) or not isinstance(graph["objects"], dict):
        raise InputError(f"{path}: scene graph {image_id} has size {graph['width']!r}×"
                         f"{graph['height']!r} or objects that are not an object — is this the "
                         "official GQA file?")
    for oid, o in graph["objects"].items():
        require(o, OBJECT_KEYS, path, f"object {oid} of image {image_id}", RELEASE)
        if not all(isinstance(o[k], Real) and not isinstance(o[k], bool)
                   and math.isfinite(o[k]) for k in ("x", "y", "w", "h")):
            raise InputError(f"{path}: object {oid} of image {image_id} has a box that is not "
                             "four numbers — re-download the scene graphs")


def _pointers(question: dict, field: str) -> list:
    """The values of ``annotations[field]`` (token span → object ids), repeats kept."""
    pointers = question["annotations"].get(field) or {}
    if not isinstance(pointers, dict):
        return [repr(pointers)]  # not spans: reported as an object id no graph has
    return list(pointers.values())


def _pointed(question: dict, field: str) -> List[str]:
    """Object ids that ``annotations[field]`` points to, in order of first mention."""
    ids: List[str] = []
    for value in _pointers(question, field):
        for oid in str(value).split(","):
            if oid.strip() and oid.strip() not in ids:
                ids.append(oid.strip())
    return ids


def box_mask(obj: dict, h: int, w: int) -> np.ndarray:
    """The (h, w) mask of a scene-graph object's box ``x, y, w, h``: the pixels whose top-left
    corner lies in [x, x + w) × [y, y + h), clipped to the image (empty for a box of no width
    or height, or outside the image)."""
    x0, y0 = max(0, math.ceil(obj["x"])), max(0, math.ceil(obj["y"]))
    x1 = min(w, math.ceil(obj["x"] + obj["w"]))
    y1 = min(h, math.ceil(obj["y"] + obj["h"]))
    m = np.zeros((h, w), bool)
    m[y0:max(y0, y1), x0:max(x0, x1)] = True
    return m


@register("gqa")
class GQADataset(Dataset):
    """GQA balanced questions + scene graphs (see the module docstring)."""

    name = "gqa"
    exact_match = True
    references = ("gqa_regions",)

    def __init__(self, data_root: Optional[str] = None, split: str = "val", seed: int = 0,
                 **_: object) -> None:
        self.split, self.seed = split or "val", seed
        qname = f"{self.split}_balanced_questions.json"
        gname = f"{self.split}_sceneGraphs.json"
        self.data_root = root = root_folder(data_root, self.name,
                                            f"{qname}, {gname} and images/<imageId>.jpg")
        self.image_dir = root / "images"
        self._qpath, self._gpath = root / qname, root / gname
        questions = read_json(self._qpath, "GQA questions")
        graphs = read_json(self._gpath, "GQA scene graphs",
                           "put the official file in --data-root (GQA publishes scene graphs "
                           "for train and val only)")
        for path, obj in ((self._qpath, questions), (self._gpath, graphs)):
            if not isinstance(obj, dict):
                raise InputError(f"{path}: expected an object keyed by id, found a "
                                 f"{type(obj).__name__} — is this the official GQA file?")
        for iid, g in graphs.items():
            _check_graph(g, self._gpath, iid)
        for qid, q in questions.items():
            require(q, QUESTION_KEYS, self._qpath, f"question {qid}", RELEASE)
            check_question_type(q["question"], str(self._qpath), qid)
            answer_text(q["answer"], f"{self._qpath}: question {qid}")
            for key in ("types", "annotations"):
                if not isinstance(q[key], dict):
                    raise InputError(f"{self._qpath}: question {qid} has {key} of type "
                                     f"{type(q[key]).__name__}, expected an object — is this "
                                     "the official GQA file?")
            graph = graphs.get(str(q["imageId"]))
            if graph is None:
                raise InputError(f"{self._gpath} has no scene graph for image {q['imageId']} "
                                 f"(question {qid}) — use the scene graphs of split {self.split}")
            for field in POINTERS:
                for oid in _pointed(q, field):
                    if oid not in graph["objects"]:
                        raise InputError(f"{self._qpath}: question {qid} points ({field}) to "
                                         f"object {oid}, which image {q['imageId']}'s scene "
                                         f"graph in {self._gpath} does not have — use files of "
                                         "the same release")
        self._ids = sorted(questions, key=lambda k: (len(k), k))  # numeric order of the ids
        self._questions, self._graphs = questions, graphs

    def __len__(self) -> int:
        return len(self._ids)

    def image_path(self, image_id: str) -> Path:
        return self.image_dir / f"{image_id}.jpg"

    def __getitem__(self, i: int) -> Record:
        if not 0 <= i < len(self):
            raise IndexError(i)
        qid = self._ids[i]
        q = self._questions[qid]
        family = str(q["types"].get("structural", ""))
        question = question_text(q["question"], str(self._qpath), qid, family)
        answer = answer_text(q["answer"], f"{self._qpath}: question {qid}")
        iid = str(q["imageId"])
        graph = self._graphs[iid]
        path = self.image_path(iid)
        if not path.is_file():
            raise MissingImage(path, qid, family, f"put GQA's images in {self.image_dir}")
        image = decode_rgb(path, f"question {qid}")
        h, w = image.shape[:2]
        if (h, w) != (int(graph["height"]), int(graph["width"])):
            raise InputError(f"image {path} is {w}×{h} but {self._gpath} says "
                             f"{graph['width']}×{graph['height']} for image {iid} — use matching "
                             "images and scene graphs")
        objects = {oid: box_mask(o, h, w) for oid, o in sorted(graph["objects"].items())}
        asked = _pointed(q, "question")
        evidence_ids = list(dict.fromkeys(asked + _pointed(q, "answer")
                                          + _pointed(q, "fullAnswer")))
        target = np.zeros((h, w), bool)
        for oid in asked:
            target |= objects[oid]
        evidence = target.copy()
        for oid in evidence_ids:
            evidence |= objects[oid]
        distractor, distractor_id = self._distractor(graph, objects, asked, evidence_ids, target)
        control, control_ids = matched_control(objects, asked, evidence_ids, self.seed, qid,
                                               (h, w))
        types = q["types"]
        return Record(
            sample_id=qid, image=image, question=question, answers=[answer],
            family=family, target_mask=target, distractor_mask=distractor,
            evidence_mask=evidence, control_mask=control & ~target,
            extra={"image_id": iid, "question_id": qid, "semantic_type": types.get("semantic"),
                   "detailed_type": types.get("detailed"), "target_object_ids": asked,
                   "evidence_object_ids": evidence_ids, "distractor_object_id": distractor_id,
                   "control_object_ids": list(control_ids), "full_answer": q.get("fullAnswer"),
                   "gqa_regions": self.grounding_regions(q, graph)})

    @staticmethod
    def _distractor(graph: dict, objects: Dict[str, np.ndarray], asked: List[str],
                    referenced: List[str], target: np.ndarray) -> Tuple[np.ndarray, Optional[str]]:
        """One unreferenced object outside the target, preferring a target object's name."""
        if not target.any():
            return np.zeros_like(target), None
        names = {graph["objects"][o]["name"] for o in asked}
        others = [o for o in objects if o not in referenced and (objects[o] & ~target).any()]
        same = [o for o in others if graph["objects"][o]["name"] in names]
        pick = (same or others or [None])[0]
        if pick is None:
            return np.zeros_like(target), None
        return objects[pick] & ~target, pick

    @staticmethod
    def grounding_regions(question: dict, graph: dict) -> List[List[float]]:
        """GQA's grounding regions as (x0, y0, x1, y1) fractions of the image: the question's and
        the full answer's objects (repeats kept, as GQA's script sums over them) and the whole
        image when a step of the program has "scene" (see the comment below)."""
        w, h = float(graph["width"]), float(graph["height"])
        regions = []
        for field in ("question", "fullAnswer"):
            for value in _pointers(question, field):
                for oid in str(value).split(","):
                    o = graph["objects"][oid.strip()]
                    regions.append([o["x"] / w, o["y"] / h, (o["x"] + o["w"]) / w,
                                    (o["y"] + o["h"]) / h])
        # GQA's test, as written: a step that *has* "scene" (a key of a step object, a substring
        # of a step string); GQA's steps are objects without such a key, so in practice never
        if any("scene" in step for step in question.get("semantic", [])
               if isinstance(step, (dict, str))):
            regions.append([0.0, 0.0, 1.0, 1.0])
        return regions

    def describe(self) -> dict:
        return {"name": self.name, "split": self.split, "data_root": str(self.data_root),
                "n": len(self)}
