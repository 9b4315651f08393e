"""Generated GQA releases in the published formats (balanced questions, scene graphs, images),
with what each file means: boxes inside, partly or wholly outside the image, of no width, with
fractional or non-numeric coordinates, empty scene graphs, pointers to objects a graph lacks,
repeated question ids, unicode and empty questions, answers of every JSON type; a box's mask
computed here independently of the loader (the pixels whose top-left corner lies in the box)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from tests.coco_release import ANSWERS, TEXT_OF, Expected
from tests.property_files import UNREADABLE, write_image

#: box kinds (x, y, w, h as fractions of the image); the last is malformed
BOXES = {"inside": (0.1, 0.2, 0.5, 0.4), "partly outside": (-0.3, 0.5, 0.8, 0.9),
         "outside": (1.5, 1.5, 0.2, 0.2), "no width": (0.3, 0.3, 0.0, 0.5),
         "negative width": (0.6, 0.1, -0.3, 0.5), "fractional": (0.13, 0.27, 0.31, 0.52),
         "not numbers": None}
TEXTS = ("Is the cat on the mat?", "Où est le chat ☃ ?", "", "  ")
DEFECTS = ("question id repeated", "question points to an object the graph lacks",
           "image without a scene graph", "image size differs from its graph")


@dataclass
class Img:
    h: int = 8
    w: int = 10
    mode: str = "RGB.png"
    written: bool = True
    boxes: List[str] = field(default_factory=lambda: ["inside"])
    questions: List[tuple] = field(default_factory=lambda: [(TEXTS[0], "str", 1)])


@dataclass
class Release:
    images: List[Img]
    defect: Optional[str] = None
    seed: int = 0


def box_pixels(box: dict, h: int, w: int) -> np.ndarray:
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    return ((cols >= box["x"]) & (cols < box["x"] + box["w"]) & (rows >= box["y"])
            & (rows < box["y"] + box["h"]))


def _objects(img: Img, image_id: str) -> dict:
    objects = {}
    for k, kind in enumerate(img.boxes):
        frac = BOXES[kind]
        box = {"x": "left", "y": 0, "w": 1, "h": 1} if frac is None else \
            dict(zip("xywh", (round(v * s, 2) for v, s in zip(frac, (img.w, img.h) * 2))))
        if kind != "fractional" and frac is not None:
            box = {k2: int(v) for k2, v in box.items()}
        objects[f"{image_id}{k}"] = {"name": "cat", **box}
    return objects


def write_release(release: Release, root: Path) -> Expected:
    """Write ``release`` under ``root``; return what a correct loader does with it."""
    rng = np.random.default_rng(release.seed)
    exp, graphs, questions = Expected(), {}, []
    for i, img in enumerate(release.images):
        iid = str(2000 + i)
        graphs[iid] = {"width": img.w, "height": img.h, "objects": _objects(img, iid)}
        if any(BOXES[b] is None for b in img.boxes):
            exp.errors.append(("val_sceneGraphs.json", f"image {iid}"))
        rgb = rng.integers(0, 256, (img.h, img.w, 3), dtype=np.uint8)
        pixels = write_image(root / "images" / f"{iid}.jpg", rgb, img.mode) \
            if img.written else None
        for text, answer, pointed in img.questions:
            qid = str(len(questions) + 1)
            oids = list(graphs[iid]["objects"])[:pointed]
            questions.append((qid, {
                "imageId": iid, "question": text, "answer": ANSWERS[answer], "types": {
                    "structural": "query"}, "annotations": {"question": {
                        str(k): o for k, o in enumerate(oids)}, "answer": {}, "fullAnswer": {}}}))
            _expect(exp, qid, iid, img, text, answer, graphs[iid], oids, pixels)
    _apply_defect(release, graphs, questions, exp)
    if len(exp.notes) < len(exp.sample_ids):  # some question is left to score
        exp.run_errors.clear()
    root.mkdir(parents=True, exist_ok=True)
    (root / "val_sceneGraphs.json").write_text(json.dumps(graphs), encoding="utf-8")
    body = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in questions)
    (root / "val_balanced_questions.json").write_text("{" + body + "}", encoding="utf-8")
    return exp


def _expect(exp: Expected, qid: str, iid: str, img: Img, text: str, answer: str, graph: dict,
            oids: List[str], pixels) -> None:
    exp.sample_ids.append(qid)
    if answer == "list":
        exp.errors.append(("val_balanced_questions.json", f"question {qid}"))
    if not text.strip():
        exp.notes[qid] = "empty question"
        exp.run_errors.append(("val_balanced_questions.json", f"question {qid}"))
    elif not img.written:
        exp.notes[qid] = "image missing"
        exp.run_errors.append((f"{iid}.jpg", f"question {qid}"))
    elif img.mode in UNREADABLE:
        exp.errors.append((f"{iid}.jpg", f"question {qid}"))
    elif all(BOXES[b] is not None for b in img.boxes):
        exp.targets[qid] = np.logical_or.reduce(
            [box_pixels(graph["objects"][o], img.h, img.w) for o in oids]
            + [np.zeros((img.h, img.w), bool)])
        exp.images[qid] = (pixels, (img.h, img.w))
        exp.answers[qid] = TEXT_OF.get(answer, "")


def _apply_defect(release: Release, graphs: dict, questions: list, exp: Expected) -> None:
    qfile, gfile = "val_balanced_questions.json", "val_sceneGraphs.json"
    qid, q = questions[0]
    if release.defect == "question id repeated":
        questions.append((qid, q))
        exp.errors.append((qfile, qid))
    elif release.defect == "question points to an object the graph lacks":
        q["annotations"]["question"]["9"] = "nosuchobject"
        exp.errors.append((qfile, f"question {qid}"))
    elif release.defect == "image without a scene graph":
        del graphs[q["imageId"]]
        exp.errors.append((gfile, f"question {qid}"))
    elif release.defect == "image size differs from its graph":
        iid = q["imageId"]
        graphs[iid]["width"] += 1
        on_it = [k for k, v in questions if v["imageId"] == iid]
        if any(k in exp.targets for k in on_it):  # a question that reads the image
            exp.errors.append((f"{iid}.jpg", iid))
            for k in on_it:
                exp.targets.pop(k, None)
