"""Generated CLEVR-XAI releases in the published layout (questions JSON, images, one ``.npy``
mask per question and type), with what each file means: masks at the image's size, at the
release's 128 × 128, at 1 × 1, missing, of floats, or malformed (3-D, empty, pickled objects,
not a ``.npy``); answers of every JSON type; repeated question indices. A mask stored at
another size means its nearest-neighbour resampling to the image (source row ⌊i·h / H⌋),
computed here independently of the loader."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

import numpy as np

from tests.coco_release import Expected
from tests.property_files import UNREADABLE, write_image

MASKS = ("image size", "128", "1x1", "floats", "missing", "3-D", "empty", "objects", "not npy")
MALFORMED = ("3-D", "empty", "objects", "not npy")
ANSWERS = {"str": "cube", "int": 3, "bool": False, "list": [1], "null": None}
TEXT_OF = {"str": "cube", "int": "3", "bool": "no"}


@dataclass
class Question:
    mask: str = "image size"
    answer: str = "str"
    text: str = "Is there a cube?"


@dataclass
class Img:
    h: int = 8
    w: int = 12
    mode: str = "RGBA.png"
    written: bool = True
    questions: List[Question] = field(default_factory=lambda: [Question()])


@dataclass
class Release:
    images: List[Img]
    repeated_index: bool = False
    seed: int = 0


def nearest(mask: np.ndarray, h: int, w: int) -> np.ndarray:
    rows = np.floor(np.arange(h) * mask.shape[0] / h).astype(int)
    cols = np.floor(np.arange(w) * mask.shape[1] / w).astype(int)
    return mask[np.ix_(rows, cols)]


def _write_mask(path: Path, kind: str, h: int, w: int, rng) -> Optional[np.ndarray]:
    """Write a mask of ``kind``; return what it means at the image's size (``None``: no file,
    or a malformed one)."""
    shape = {"image size": (h, w), "128": (128, 128), "1x1": (1, 1), "floats": (5, 7)}.get(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    if shape is not None:
        mask = rng.random(shape) > 0.5
        np.save(path, mask.astype(np.float32) if kind == "floats" else mask)  # 0/1 as floats
        return nearest(mask, h, w)
    if kind == "3-D":
        np.save(path, np.zeros((2, 3, 4), bool))
    elif kind == "empty":
        np.save(path, np.zeros((0, 5), bool))
    elif kind == "objects":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "not npy":
        path.write_bytes(b"not a numpy file")
    return None


def write_release(release: Release, root: Path) -> Expected:
    """Write ``release`` (split ``simple``) under ``root``; return what a correct loader does."""
    rng = np.random.default_rng(release.seed)
    exp, questions = Expected(), []
    qfile = "CLEVR-XAI_simple_questions.json"
    for i, img in enumerate(release.images):
        name = f"CLEVR_unique_{i:06d}.png"
        rgb = rng.integers(0, 256, (img.h, img.w, 3), dtype=np.uint8)
        pixels = write_image(root / "images" / name, rgb, img.mode) if img.written else None
        for q in img.questions:
            idx = len(questions)
            sid = str(idx)
            questions.append({"question_index": idx, "image_filename": name,
                              "question": q.text, "answer": ANSWERS[q.answer]})
            meaning = _write_mask(root / "ground_truth_simple_questions_single_object"
                                  / f"{idx}.npy", q.mask, img.h, img.w, rng) \
                if q.mask != "missing" else np.zeros((img.h, img.w), bool)
            exp.sample_ids.append(sid)
            if q.answer not in TEXT_OF:
                exp.errors.append((qfile, f"question {sid}"))
            if not img.written:
                exp.notes[sid] = "image missing"
                exp.run_errors.append((name, f"question {sid}"))
            elif img.mode in UNREADABLE:
                exp.errors.append((name, f"question {sid}"))
            elif q.mask in MALFORMED:
                exp.errors.append((f"{idx}.npy", f"question {sid}"))
            else:
                exp.targets[sid], exp.answers[sid] = meaning, TEXT_OF.get(q.answer, "")
                exp.images[sid] = (pixels, (img.h, img.w))
    if release.repeated_index and questions:
        questions.append(dict(questions[0]))
        exp.errors.append((qfile, "question_index 0"))
    if len(exp.notes) < len(exp.sample_ids):
        exp.run_errors.clear()
    for kind in ("single_object", "all_objects"):
        (root / f"ground_truth_simple_questions_{kind}").mkdir(parents=True, exist_ok=True)
    (root / qfile).write_text(json.dumps({"info": {}, "questions": questions}), encoding="utf-8")
    return exp
