"""A CLEVR-XAI fixture in the release's layout: rendered-looking 480 × 320 RGBA scenes, simple and
complex question files, and ground-truth masks per type as ``<question_index>.npy`` at 128 × 128
(the release's resolution), with undefined masks left out and one image missing."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import numpy as np

W, H, GT = 480, 320, 128

#: image index → objects (shape, colour, centre x, centre y, radius)
SCENES = {
    0: [("sphere", (200, 180, 30), 120, 200, 40), ("cube", (40, 80, 200), 300, 150, 45),
        ("cube", (180, 40, 40), 400, 240, 30)],
    1: [("sphere", (30, 160, 60), 240, 160, 60), ("cylinder", (120, 120, 120), 90, 220, 35)],
    2: [("sphere", (200, 30, 200), 100, 100, 30)],  # its image file is missing
}


def object_mask(image: int, k: int) -> np.ndarray:
    shape, _, cx, cy, r = SCENES[image][k]
    yy, xx = np.mgrid[0:H, 0:W]
    if shape == "sphere":
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r ** 2
    return (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)


def render(image: int) -> np.ndarray:
    rgba = np.full((H, W, 4), 255, np.uint8)
    rgba[..., :3] = np.linspace(150, 110, H, dtype=np.uint8)[:, None, None]  # grey floor
    for k, (_, colour, *_) in enumerate(SCENES[image]):
        rgba[object_mask(image, k), :3] = colour
    return rgba


def to_release(mask: np.ndarray) -> np.ndarray:
    """A full-size mask as the release stores it: bilinear to 128 × 128, then > 0."""
    from PIL import Image

    small = Image.fromarray(mask.astype(np.float32)).resize((GT, GT), Image.BILINEAR)
    return np.asarray(small) > 0


#: split → question index → (image, question, answer, template, {mask type: object indices})
QUESTIONS: Dict[str, Dict[int, tuple]] = {
    "simple": {
        0: (0, "What is the yellow sphere made of?", "rubber", "simple_query.json",
            {"single_object": [0], "all_objects": [0, 1, 2]}),
        1: (0, "What color is the large cube?", "blue", "simple_query.json",
            {"single_object": [1], "all_objects": [0, 1, 2]}),
        2: (1, "What shape is the gray object?", "cylinder", "simple_query.json",
            {"single_object": [1], "all_objects": [0, 1]}),
        3: (2, "What color is the sphere?", "purple", "simple_query.json",
            {"single_object": [0], "all_objects": [0]}),
    },
    "complex": {
        10: (0, "Are there more cubes than spheres?", True, "compare_integer.json",
             {"union": [0, 1, 2], "unique_firstnonempty": [0], "all_objects": [0, 1, 2]}),
        11: (0, "How many cubes are there?", 2, "counting.json",
             {"union": [1, 2], "unique_firstnonempty": [1, 2], "all_objects": [0, 1, 2]}),
        12: (1, "What is the size of the green sphere?", "large", "zero_hop.json",
             {"unique": [0], "union": [0], "unique_firstnonempty": [0], "all_objects": [0, 1]}),
    },
}


def write_clevrxai(root: Path) -> Path:
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for image in SCENES:
        if image != 2:
            Image.fromarray(render(image)).save(root / "images" / f"CLEVR_unique_{image:06d}.png")
    for split, questions in QUESTIONS.items():
        entries = []
        for idx, (image, text, answer, template, masks) in questions.items():
            entries.append({"split": "unique", "image_filename": f"CLEVR_unique_{image:06d}.png",
                            "image_index": image, "image": f"CLEVR_unique_{image:06d}",
                            "question": text, "answer": answer, "program": [],
                            "template_filename": template, "question_family_index": 0,
                            "question_index": idx})
            for kind, objects in masks.items():
                folder = root / f"ground_truth_{split}_questions_{kind}"
                folder.mkdir(exist_ok=True)
                full = np.logical_or.reduce([object_mask(image, k) for k in objects])
                np.save(folder / f"{idx}.npy", to_release(full))
        (root / f"CLEVR-XAI_{split}_questions.json").write_text(
            json.dumps({"info": {"split": "unique"}, "questions": entries}))
    return root
