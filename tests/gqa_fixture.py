"""A GQA fixture over real photographs (scikit-image's sample photos), in GQA's published
formats: ``val_balanced_questions.json``, ``val_sceneGraphs.json`` and ``images/<imageId>.jpg``,
with pointers to several objects, answer-only objects, nested and overlapping boxes, a
comma-separated pointer, a question that points to nothing and one whose image is missing."""
from __future__ import annotations

import json
from pathlib import Path

PHOTOS = {"2354786": "astronaut", "2368312": "coffee", "2400001": "chelsea",
          "2499999": None}  # 2499999: its file is missing


def _obj(name, x, y, w, h):
    return {"name": name, "x": x, "y": y, "w": w, "h": h, "attributes": [], "relations": []}


GRAPHS = {
    "2354786": {"width": 512, "height": 512, "objects": {
        "1001": _obj("man", 150, 60, 270, 452), "1002": _obj("flag", 10, 10, 110, 140),
        "1003": _obj("helmet", 200, 60, 130, 130), "1004": _obj("shuttle", 380, 20, 120, 200)}},
    "2368312": {"width": 600, "height": 400, "objects": {
        "2001": _obj("cup", 130, 50, 340, 260), "2002": _obj("spoon", 430, 250, 150, 95),
        "2003": _obj("table", 0, 290, 600, 110), "2004": _obj("saucer", 100, 200, 400, 120),
        "2005": _obj("cup", 500, 20, 90, 90)}},
    "2400001": {"width": 451, "height": 300, "objects": {
        "3001": _obj("cat", 80, 50, 300, 220), "3002": _obj("wall", 0, 0, 451, 60)}},
    "2499999": {"width": 640, "height": 427, "objects": {"4001": _obj("sky", 0, 0, 640, 200)}},
}


def _q(image, question, answer, full, structural, detailed, q=None, a=None, fa=None, program=()):
    return {"imageId": image, "question": question, "answer": answer, "fullAnswer": full,
            "isBalanced": True, "groups": {"global": None, "local": detailed},
            "entailed": [], "equivalent": [],
            "types": {"structural": structural, "semantic": "rel", "detailed": detailed},
            "annotations": {"question": q or {}, "answer": a or {}, "fullAnswer": fa or {}},
            "semantic": [{"operation": op, "dependencies": [], "argument": arg}
                         for op, arg in program], "semanticStr": ""}


QUESTIONS = {
    "201": _q("2354786", "Is the man wearing a helmet?", "yes", "Yes, the man is wearing a helmet.",
              "verify", "relVerify", q={"3": "1001", "6": "1003"},
              fa={"2": "1001", "6": "1003"}, program=[("select", "man (1001)")]),
    "202": _q("2354786", "What is the man in front of?", "flag", "The man is in front of a flag.",
              "query", "relS", q={"3": "1001"}, a={"0": "1002"},
              fa={"1": "1001", "7": "1002"}),
    "1203": _q("2368312", "Which color is the cup on the table?", "white",
               "The cup is white.", "query", "chooseAttr", q={"3": "2001", "6": "2003"},
               fa={"1": "2001"}),
    "204": _q("2368312", "What is on the saucer?", "cup", "The cup is on the saucer.", "query",
              "relS", q={"4": "2004"}, a={"0": "2001"}, fa={"1": "2001", "5": "2004"}),
    "205": _q("2400001", "Is it indoors or outdoors?", "indoors", "It is indoors.", "choose",
              "locationChoose", program=[("select", "scene")]),
    "206": _q("2400001", "What animal is in front of the wall?", "cat", "The cat is in front of "
              "the wall.", "query", "categoryRelS", q={"6:8": "3002"}, a={"0": "3001"},
              fa={"1": "3001,3002"}),
    "207": _q("2499999", "What is in the sky?", "nothing", "Nothing is in the sky.", "query",
              "relS", q={"4": "4001"}),
}


def write_gqa(root: Path) -> Path:
    """Write the fixture under ``root`` and return ``root``."""
    from PIL import Image

    from tests.coco_fixture import skimage_photo

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for image_id, name in PHOTOS.items():
        if name is not None:
            Image.fromarray(skimage_photo(name)).save(root / "images" / f"{image_id}.jpg",
                                                      quality=92)
    (root / "val_balanced_questions.json").write_text(json.dumps(QUESTIONS))
    (root / "val_sceneGraphs.json").write_text(json.dumps(GRAPHS))
    return root
