"""Generated VQA + COCO releases in the official formats, with what each file means.

A :class:`Release` describes images (size, how the file is stored, whether it is there), their
COCO instances (every segmentation form, well- and ill-formed), questions (unicode, empty, with
answers of every JSON type) and at most one file-level defect (a repeated id, a question about
an image the instances file lacks). :func:`write_release` writes it and returns
:class:`Expected`: the errors a correct loader may stop with (file name, record), the notes of
the questions it excludes, and every other question's target mask, decoded here independently
of the loader (pycocotools per polygon and for compressed RLE, run lengths expanded by hand).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from tests.property_files import UNREADABLE, write_image

CATEGORIES = {17: "cat", 38: "kite", 44: "spoon"}
#: segmentation forms; the last four are malformed
FORMS = ("polygon", "outside", "collinear", "two_points", "empty", "rle", "rle_string",
         "odd", "nan", "rle_short", "rle_long", "rle_size")
MALFORMED = ("odd", "nan", "rle_short", "rle_long", "rle_size")
TEXTS = ("Is there a {c}?", "Où est le {c} ☃ ?", "What is this?", "", "   ")
ANSWERS = {"str": "two", "int": 2, "bool": True, "list": ["a", "b"]}
#: what a scorer reads of each well-formed answer
TEXT_OF = {"str": "two", "int": "2", "bool": "yes"}
DEFECTS = ("question id repeated", "annotation id repeated", "image id repeated",
           "question about an image the instances file lacks")


@dataclass
class Obj:
    cat: str = "cat"
    form: str = "polygon"
    crowd: int = 0


@dataclass
class Question:
    text: str = TEXTS[0]
    cat: str = "cat"
    answer: str = "str"


@dataclass
class Img:
    h: int = 9
    w: int = 12
    mode: str = "RGB.png"
    written: bool = True
    objects: List[Obj] = field(default_factory=list)
    questions: List[Question] = field(default_factory=lambda: [Question()])


@dataclass
class Release:
    images: List[Img]
    defect: Optional[str] = None
    seed: int = 0


@dataclass
class Expected:
    errors: List[Tuple[str, str]] = field(default_factory=list)  # (file name, record)
    run_errors: List[Tuple[str, str]] = field(default_factory=list)  # no question to score
    notes: Dict[str, str] = field(default_factory=dict)
    targets: Dict[str, np.ndarray] = field(default_factory=dict)
    images: Dict[str, tuple] = field(default_factory=dict)  # sample id → (decoded, shape)
    answers: Dict[str, str] = field(default_factory=dict)
    sample_ids: List[str] = field(default_factory=list)


def run_lengths(mask: np.ndarray) -> List[int]:
    """COCO's uncompressed RLE of a mask: column-major runs, starting with a run of 0s."""
    flat = mask.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], edges, [flat.size]])).tolist()
    return ([0] if flat[0] else []) + runs


def polygon_mask(poly: List[float], h: int, w: int) -> np.ndarray:
    from pycocotools import mask as mask_utils

    return mask_utils.decode(mask_utils.frPyObjects([poly], h, w))[..., 0] > 0


def segmentation(form: str, h: int, w: int, rng) -> Tuple[object, Optional[np.ndarray]]:
    """(the segmentation as written, the mask it means; ``None`` when malformed)."""
    none = np.zeros((h, w), bool)
    if form in ("polygon", "outside", "collinear"):
        k = int(rng.integers(3, 7))
        lo, hi = (-1.0, 2.0) if form == "outside" else (0.0, 1.0)
        x, y = rng.uniform(lo, hi, k) * w, rng.uniform(lo, hi, k) * h
        if form == "collinear":
            y = h * 0.5 + (x - w * 0.5) * 0.3
        poly = [round(float(v), 2) for xy in zip(x, y) for v in xy]
        return [poly], polygon_mask(poly, h, w)
    if form == "two_points":
        return [[0.0, 0.0, float(w), float(h)]], none  # no area (not a box: COCO has none here)
    if form == "empty":
        return [], none
    if form == "odd":
        return [[0.0, 0.0, 1.0, 1.0, 2.0]], None
    if form == "nan":
        return [[0.0, 0.0, float("nan"), 1.0, 2.0, 2.0]], None
    mask = rng.random((h, w)) < 0.4
    counts = run_lengths(mask)
    if form == "rle_string":
        from pycocotools import mask as mask_utils

        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
        return {"size": [h, w], "counts": rle["counts"].decode("ascii")}, mask
    size = [h + 1, w] if form == "rle_size" else [h, w]
    counts = counts[:-1] + [counts[-1] - 1] if form == "rle_short" else \
        counts + [3] if form == "rle_long" else counts
    return {"size": size, "counts": counts}, (mask if form == "rle" else None)


def _question_files(version: int) -> Tuple[str, str]:
    from tests.coco_fixture import VQA_FILES

    return VQA_FILES[version]


def _instances(release: Release, rng, ids, exp: Expected) -> Tuple[list, list, dict]:
    """COCO's images and annotations; each written object's meaning by image."""
    cat_id = {n: c for c, n in CATEGORIES.items()}
    images, anns, meaning = [], [], {}
    for i, img in enumerate(release.images, start=1):
        images.append({"id": i, "file_name": f"COCO_val2014_{i:012d}.jpg", "height": img.h,
                       "width": img.w})
        meaning[i] = []
        for o in img.objects:
            seg, mask = segmentation(o.form, img.h, img.w, rng)
            a = next(ids)
            anns.append({"id": a, "image_id": i, "category_id": cat_id[o.cat],
                         "segmentation": seg, "iscrowd": o.crowd, "area": 0, "bbox": [0, 0, 1, 1]})
            meaning[i].append((a, o, mask))
    return images, anns, meaning


def _apply_defect(release: Release, images, anns, questions, annotations, files,
                  exp: Expected) -> None:
    ifile, qfile = files
    defect = release.defect
    if defect == "question id repeated" and questions:
        questions.append(dict(questions[0]))
        exp.errors.append((qfile, str(questions[0]["question_id"])))
    elif defect == "annotation id repeated" and anns:
        anns.append(dict(anns[0]))
        exp.errors.append((ifile, str(anns[0]["id"])))
    elif defect == "image id repeated":
        images.append(dict(images[0]))
        exp.errors.append((ifile, str(images[0]["id"])))
    elif defect == "question about an image the instances file lacks":
        questions.append({"question_id": 99999, "image_id": 999, "question": "Is there a cat?"})
        annotations.append({"question_id": 99999, "question_type": "is there a",
                            "answers": [{"answer": "no"}] * 10})
        exp.errors.append((ifile, "999"))


def write_release(release: Release, root: Path, version: int = 2) -> Expected:
    """Write ``release`` under ``root`` (VQA ``version`` val2014 layout) and return what a
    correct loader does with it."""
    rng = np.random.default_rng(release.seed)
    qfile, afile = _question_files(version)
    ifile = "instances_val2014.json"
    exp = Expected()
    ids = iter(range(1, 10**6))
    images, anns, meaning = _instances(release, rng, ids, exp)
    questions, annotations, q_spec = [], [], {}
    for i, img in enumerate(release.images, start=1):
        for q in img.questions:
            qid = 10 * i + len(questions) + 1
            text = q.text.format(c=q.cat)
            questions.append({"question_id": qid, "image_id": i, "question": text})
            q_spec[str(qid)] = q
            annotations.append({"question_id": qid, "image_id": i, "question_type": "what",
                                "answer_type": "other",
                                "answers": [{"answer": ANSWERS[q.answer], "answer_id": k + 1}
                                            for k in range(10)]})
            if q.answer == "list":
                exp.errors.append((afile, f"question {qid}"))
            if any(o.form in MALFORMED for o in img.objects):
                exp.errors += [(ifile, f"annotation {a}") for a, o, _ in meaning[i]
                               if o.form in MALFORMED]
    _apply_defect(release, images, anns, questions, annotations, (ifile, qfile), exp)
    files = {qfile: {"questions": questions}, afile: {"annotations": annotations},
             ifile: {"images": images, "annotations": anns,
                     "categories": [{"id": c, "name": n} for c, n in CATEGORIES.items()]}}
    root.mkdir(parents=True, exist_ok=True)
    for name, obj in files.items():
        (root / name).write_text(json.dumps(obj), encoding="utf-8")
    _expect_records(release, root, questions, meaning, exp, rng, qfile, q_spec)
    return exp


def _expect_records(release: Release, root: Path, questions, meaning, exp: Expected,
                    rng, qfile: str, q_spec: Dict[str, Question]) -> None:
    """Write the image files; per question: excluded (note), an error, or its target."""
    pixels, named_in = {}, []
    for i, img in enumerate(release.images, start=1):
        rgb = rng.integers(0, 256, (img.h, img.w, 3), dtype=np.uint8)
        path = root / "val2014" / f"COCO_val2014_{i:012d}.jpg"
        pixels[i] = write_image(path, rgb, img.mode) if img.written else None
    for q in sorted(questions, key=lambda q: q["question_id"]):
        if q["image_id"] not in pixels:
            continue
        sid, img = str(q["question_id"]), release.images[q["image_id"] - 1]
        exp.sample_ids.append(sid)
        image_file = f"COCO_val2014_{q['image_id']:012d}.jpg"
        if not q["question"].strip():
            exp.notes[sid] = "empty question"
            named_in.append((qfile, f"question {sid}"))
        elif not img.written:
            exp.notes[sid] = "image missing"
            named_in.append((image_file, f"question {sid}"))
        elif img.mode in UNREADABLE:
            exp.errors.append((image_file, f"question {sid}"))
        else:
            exp.answers[sid] = TEXT_OF.get(q_spec[sid].answer, "")
            named = [a for a, o, _ in meaning[q["image_id"]] if f" {o.cat}" in q["question"]]
            exp.targets[sid] = np.logical_or.reduce(
                [m for a, _, m in meaning[q["image_id"]] if a in named and m is not None]
                + [np.zeros((img.h, img.w), bool)])
            exp.images[sid] = (pixels[q["image_id"]], (img.h, img.w))
    if exp.sample_ids and len(exp.notes) == len(exp.sample_ids):  # nothing left to score
        exp.run_errors += named_in
