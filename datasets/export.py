"""Export synthetic samples in the official VQA v2 + COCO format (exercises the file loaders).

Writes, under ``out``: ``v2_OpenEnded_mscoco_<split>2014_questions.json``,
``v2_mscoco_<split>2014_annotations.json``, ``instances_<split>2014.json`` (one COCO instance per
object, RLE segmentation, shape names as categories), ``<split>2014/COCO_<split>2014_%012d.jpg``
and ``evidence.json`` (``{question_id: [annotation ids of the target objects]}``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from datasets import synthetic as syn


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def export_vqav2(out: Path, n: int, seed: int = 0, split: str = "test", coco_split: str = "val",
                 image_size: int = 96, quality: int = 95) -> Path:
    """Export the first ``n`` samples of synthetic ``split`` as COCO ``<coco_split>2014``."""
    out = Path(out)
    sub = f"{coco_split}2014"
    (out / sub).mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": s, "supercategory": "shape"} for i, s in enumerate(syn.SHAPES)]
    questions, annotations, images, instances, evidence = [], [], [], [], {}
    ann_id = 1
    for i in range(n):
        s = syn.generate(seed, split, i, image_size=image_size)
        image_id, qid = i + 1, (i + 1) * 10
        name = f"COCO_{sub}_{image_id:012d}.jpg"
        Image.fromarray(s.image).save(out / sub / name, quality=quality)
        images.append({"id": image_id, "file_name": name, "width": image_size, "height": image_size})
        targets = []
        for k, o in enumerate(s.objects, start=1):
            m = s.instance_map == k
            ys, xs = np.nonzero(m)
            instances.append({"id": ann_id, "image_id": image_id,
                              "category_id": syn.SHAPES.index(o.shape) + 1,
                              "segmentation": _rle(m), "area": int(m.sum()), "iscrowd": 0,
                              "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1),
                                       int(ys.max() - ys.min() + 1)]})
            if (s.target_mask & m).any():
                targets.append(ann_id)
            ann_id += 1
        evidence[str(qid)] = targets
        questions.append({"image_id": image_id, "question": s.question, "question_id": qid})
        annotations.append({"question_id": qid, "image_id": image_id, "question_type": s.family,
                            "answer_type": "yes/no" if s.answer in ("yes", "no") else
                            ("number" if s.answer.isdigit() else "other"),
                            "multiple_choice_answer": s.answer,
                            "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": j + 1}
                                        for j, a in enumerate(s.answers)]})
    info = {"description": f"vqa-xai-bench synthetic export (generator {syn.GENERATOR_VERSION}, "
                           f"seed {seed}, split {split})"}
    files = {
        f"v2_OpenEnded_mscoco_{sub}_questions.json": {"info": info, "task_type": "Open-Ended",
                                                      "data_type": "mscoco", "data_subtype": sub,
                                                      "questions": questions},
        f"v2_mscoco_{sub}_annotations.json": {"info": info, "data_type": "mscoco",
                                              "data_subtype": sub, "annotations": annotations},
        f"instances_{sub}.json": {"info": info, "images": images, "annotations": instances,
                                  "categories": categories},
        "evidence.json": evidence,
    }
    for fname, obj in files.items():
        (out / fname).write_text(json.dumps(obj))
    return out
