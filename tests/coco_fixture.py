"""A VQA v2 + COCO fixture over real photographs (scikit-image's bundled sample photos), written
in the official file formats with every awkward case the loader must read: polygon, uncompressed
and compressed RLE segmentations, a crowd region, an empty segmentation, overlapping instances,
grayscale and CMYK JPEGs, images of different sizes and aspect ratios, and a question whose image
file is missing.

The regions are hand-placed outlines of the objects in the photos (approximate, as annotations
go); :data:`OBJECTS` keeps each one's outline so that tests can rasterise what the file means.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

SUB = "val2014"
IFILE = f"instances_{SUB}.json"
#: VQA version → (questions file, annotations file)
VQA_FILES = {2: (f"v2_OpenEnded_mscoco_{SUB}_questions.json", f"v2_mscoco_{SUB}_annotations.json"),
             1: (f"OpenEnded_mscoco_{SUB}_questions.json", f"mscoco_{SUB}_annotations.json")}
CATEGORIES = {1: "person", 17: "cat", 28: "umbrella", 38: "kite", 44: "spoon", 47: "cup",
              67: "dining table"}


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 24) -> List[float]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return [float(v) for xy in zip(cx + rx * np.cos(t), cy + ry * np.sin(t)) for v in xy]


def _poly(*xy: Tuple[float, float]) -> List[float]:
    return [float(v) for p in xy for v in p]


#: image id → (scikit-image photo, stored mode, whether the file is written)
IMAGES = {139: ("astronaut", "RGB", True), 285: ("camera", "L", True),
          632: ("chelsea", "CMYK", True), 724: ("coffee", "RGB", True),
          776: ("rocket", "RGB", False)}  # 776: its file is missing

#: annotation id → (image id, category id, outline polygon, how it is written, iscrowd)
OBJECTS: Dict[int, tuple] = {
    11: (139, 1, _poly((150, 511), (170, 300), (200, 150), (260, 60), (330, 60), (380, 150),
                       (400, 300), (420, 511)), "polygon", 0),
    12: (139, 1, _poly((430, 380), (505, 380), (505, 500), (430, 500)), "rle", 1),
    13: (139, 38, _poly((10, 10), (120, 10), (120, 150), (10, 150)), "polygon", 0),
    21: (285, 1, _poly((170, 511), (180, 300), (200, 180), (240, 80), (300, 70), (330, 150),
                       (350, 300), (360, 511)), "uncompressed", 0),
    22: (285, 28, _poly((270, 330), (300, 330), (380, 511), (230, 511)), "polygon", 0),
    31: (632, 17, _ellipse(230, 160, 150, 110), "rle", 0),
    41: (724, 47, _ellipse(300, 180, 170, 130), "polygon", 0),
    42: (724, 44, _poly((440, 250), (580, 330), (570, 345), (430, 265)), "uncompressed", 0),
    43: (724, 67, _poly((0, 290), (599, 290), (599, 399), (0, 399)), "rle", 0),
    44: (724, 44, [], "empty", 0),
    51: (776, 17, _ellipse(300, 200, 80, 60), "polygon", 0),
}

#: question id → (image id, question, question type, answer type, the ten answers)
QUESTIONS = {
    1001: (139, "How many people are in the picture?", "how many", "number",
           ["1"] * 7 + ["2"] * 3),
    1002: (139, "What is the man wearing?", "what is the man", "other",
           ["space suit"] * 6 + ["suit"] * 4),
    2001: (285, "Is the man holding a camera?", "is the man", "yes/no", ["yes"] * 10),
    3001: (632, "What color is the cat?", "what color is the", "other",
           ["gray"] * 5 + ["grey"] * 3 + ["brown"] * 2),
    4001: (724, "What is in the cup?", "what is in the", "other", ["coffee"] * 10),
    4002: (724, "What is this?", "what is this", "other", ["coffee"] * 9 + ["drink"]),
    5001: (776, "How many cats are there?", "how many", "number", ["1"] * 10),
}


def skimage_photo(name: str) -> np.ndarray:
    """One of scikit-image's bundled sample photographs."""
    import skimage.data

    return getattr(skimage.data, name)()


def photo(image_id: int) -> np.ndarray:
    """The photo of ``image_id`` before JPEG coding (grayscale for the grayscale file)."""
    return skimage_photo(IMAGES[image_id][0])


def size(image_id: int) -> Tuple[int, int]:
    """(height, width) of ``image_id``."""
    return photo(image_id).shape[:2]


def object_mask(ann_id: int) -> np.ndarray:
    """What annotation ``ann_id`` denotes: its outline rasterised by pycocotools."""
    from pycocotools import mask as mask_utils

    image_id, _, outline, _, _ = OBJECTS[ann_id]
    h, w = size(image_id)
    if not outline:
        return np.zeros((h, w), bool)
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([outline], h, w))) > 0


def _segmentation(ann_id: int):
    from pycocotools import mask as mask_utils

    outline, how = OBJECTS[ann_id][2], OBJECTS[ann_id][3]
    if how in ("polygon", "empty"):
        return [outline] if outline else []
    m = object_mask(ann_id)
    if how == "uncompressed":  # COCO's crowd layout: run lengths, column-major, from 0s
        flat = m.flatten(order="F")
        bounds = np.concatenate([[0], np.flatnonzero(flat[1:] != flat[:-1]) + 1, [flat.size]])
        counts = ([0] if flat[0] else []) + np.diff(bounds).tolist()
        return {"size": list(m.shape), "counts": [int(c) for c in counts]}
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": list(m.shape), "counts": rle["counts"].decode("ascii")}


def write_coco_vqa(root: Path, version: int = 2) -> Path:
    """Write the fixture under ``root`` (VQA ``version`` val2014 layout) and return ``root``."""
    from PIL import Image

    root = Path(root)
    (root / SUB).mkdir(parents=True, exist_ok=True)
    images = []
    for image_id, (_, mode, written) in IMAGES.items():
        h, w = size(image_id)
        name = f"COCO_{SUB}_{image_id:012d}.jpg"
        images.append({"id": image_id, "file_name": name, "height": h, "width": w})
        if written:
            Image.fromarray(photo(image_id)).convert(mode).save(root / SUB / name, quality=92)
    instances = [{"id": a, "image_id": img, "category_id": cat, "segmentation": _segmentation(a),
                  "area": int(object_mask(a).sum()), "iscrowd": crowd, "bbox": [0, 0, 1, 1]}
                 for a, (img, cat, _, _, crowd) in OBJECTS.items()]
    header = {"info": {"description": "vqa-xai-bench real-photo fixture"}, "license": {},
              "data_subtype": SUB}
    qfile, afile = VQA_FILES[version]
    files = {
        qfile: {**header, "task_type": "Open-Ended", "data_type": "mscoco",
                "questions": [{"question_id": q, "image_id": img, "question": text}
                              for q, (img, text, *_) in QUESTIONS.items()]},
        afile: {**header, "data_type": "mscoco", "annotations": [
            {"question_id": q, "image_id": img, "question_type": qt, "answer_type": at,
             "multiple_choice_answer": max(ans, key=ans.count),
             "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                         for k, a in enumerate(ans)]}
            for q, (img, _, qt, at, ans) in QUESTIONS.items()]},
        IFILE: {**header, "images": images, "annotations": instances,
                "categories": [{"id": c, "name": n, "supercategory": ""}
                               for c, n in CATEGORIES.items()]},
    }
    for name, obj in files.items():
        (root / name).write_text(json.dumps(obj))
    return root


#: question id → (how many annotators' maps VQA-HAT has for it, the objects they look at);
#: 3001 has none
HAT_MAPS = {1001: (3, [11]), 1002: (3, [11]), 2001: (1, [21]), 4001: (3, [41]),
            4002: (2, []), 5001: (3, [51])}


def human_map(question_id: int, k: int, side: int = 224) -> np.ndarray:
    """Annotator ``k``'s map: a blob on the objects the question is about (the image centre
    when none), placed a little differently by each annotator."""
    rng = np.random.default_rng([question_id, k])
    h, w = size(QUESTIONS[question_id][0])
    cy, cx = h / 2, w / 2
    if HAT_MAPS[question_id][1]:
        ys, xs = np.nonzero(np.logical_or.reduce([object_mask(a)
                                                  for a in HAT_MAPS[question_id][1]]))
        cy, cx = ys.mean(), xs.mean()
    yy, xx = np.mgrid[0:side, 0:side]
    cy, cx = cy / h * side + rng.normal(0, 8), cx / w * side + rng.normal(0, 8)
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (side / 6) ** 2))
    return np.clip(255 * blob + rng.normal(0, 6, blob.shape), 0, 255).astype(np.uint8)


def write_vqahat(root: Path) -> Path:
    """The fixture in VQA-HAT's layout: VQA v1 files, COCO, ``vqahat_val/<qid>_<k>.png``."""
    from PIL import Image

    root = write_coco_vqa(root, version=1)
    (root / "vqahat_val").mkdir(exist_ok=True)
    for qid, (n, _) in HAT_MAPS.items():
        for k in range(1, n + 1):
            Image.fromarray(human_map(qid, k)).save(root / "vqahat_val" / f"{qid}_{k}.png")
    return root


def write_panoptic(root: Path, categories: Dict[int, str] = CATEGORIES) -> Path:
    """COCO panoptic annotations for the fixture's written images, in the official layout:
    ``<root>/panoptic_val2017.json`` and ``<root>/panoptic_val2017/<image id>.png`` (segment id
    = R + 256 G + 256² B). Objects of categories outside ``categories`` stay unlabelled; a later
    object overwrites an earlier one where they overlap (panoptic segments do not overlap).
    Returns the JSON file's path."""
    from PIL import Image

    root = Path(root)
    folder = root / "panoptic_val2017"
    folder.mkdir(parents=True, exist_ok=True)
    anns = []
    for image_id, (_, _, written) in IMAGES.items():
        if not written:
            continue
        ids = np.zeros(size(image_id), np.int64)
        segments = []
        for a, (img, cat, outline, _, crowd) in OBJECTS.items():
            if img == image_id and outline and cat in categories:
                ids[object_mask(a)] = a
                segments.append({"id": a, "category_id": cat, "iscrowd": crowd})
        rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=2).astype(np.uint8)
        Image.fromarray(rgb).save(folder / f"{image_id:012d}.png")
        anns.append({"image_id": image_id, "file_name": f"{image_id:012d}.png",
                     "segments_info": [s for s in segments if (ids == s["id"]).any()]})
    path = root / "panoptic_val2017.json"
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"COCO_{SUB}_{i:012d}.jpg"} for i in IMAGES],
        "annotations": anns,
        "categories": [{"id": c, "name": n, "isthing": 1} for c, n in categories.items()]}))
    return path
