"""A COCO instances file (``instances_<split>2014.json``) as the VQA loaders read it: images by
id, each image's objects in annotation-id order, category names, and each object's mask.

Checked when read: every id is unique (images, annotations, categories), every annotation names
a known category, every image has a positive integer size. An image with no annotation is valid
(COCO has such images): it has no objects. Masks are decoded per image, on demand
(:mod:`datasets.coco_masks`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np

from benchmark.core.errors import InputError
from datasets.coco_masks import check_segmentation, segmentation_mask
from datasets.files import by_id, list_of, read_json

RELEASE = "VQA / COCO"


class CocoInstances:
    """The parsed, checked instances file at ``path`` (``fix`` says where it comes from)."""

    def __init__(self, path: Path, fix: str) -> None:
        self.path = path
        inst = read_json(path, "COCO instances", fix)
        images = list_of(inst, "images", path, ("id", "height", "width"), "image", RELEASE)
        objects = list_of(inst, "annotations", path,
                          ("id", "image_id", "category_id", "segmentation"), "annotation",
                          RELEASE)
        categories = list_of(inst, "categories", path, ("id", "name"), "category", RELEASE)
        self.categories = {k: str(c["name"]) for k, c in by_id(categories, "id", path,
                                                                "category").items()}
        self.images = by_id(images, "id", path, "image")
        for image_id, im in self.images.items():
            if not all(isinstance(im[k], int) and not isinstance(im[k], bool) and im[k] > 0
                       for k in ("height", "width")):
                raise InputError(f"{path}: image {image_id} has size {im['width']!r}×"
                                 f"{im['height']!r}, expected positive integers — re-download "
                                 "or regenerate it")
        self.objects_by_image: Dict[int, List[dict]] = {}
        self.image_of_object = {}
        for k, o in by_id(objects, "id", path, "annotation").items():
            if o["category_id"] not in self.categories:
                raise InputError(f"{path}: annotation {k} has unknown category_id "
                                 f"{o['category_id']} — re-download or regenerate it")
            self.objects_by_image.setdefault(o["image_id"], []).append(o)
            self.image_of_object[k] = o["image_id"]
        for objs in self.objects_by_image.values():
            objs.sort(key=lambda o: o["id"])

    def size(self, image_id) -> tuple:
        """(height, width) of ``image_id`` as the file gives it."""
        im = self.images[image_id]
        return int(im["height"]), int(im["width"])

    def objects(self, image_id) -> List[dict]:
        """The image's annotations in id order (none for an image without objects)."""
        return self.objects_by_image.get(image_id, [])

    def check(self, image_ids) -> None:
        """Every segmentation of the objects of ``image_ids`` checked (without rasterising), so
        that a bad one stops a run before its first unit, not in the middle."""
        for image_id in image_ids:
            h, w = self.size(image_id)
            for o in self.objects(image_id):
                check_segmentation(o["segmentation"], h, w, f"{self.path}: annotation {o['id']}")

    def masks(self, image_id) -> Dict[int, np.ndarray]:
        """Annotation id → (H, W) bool mask for every object of ``image_id``."""
        h, w = self.size(image_id)
        return {o["id"]: segmentation_mask(o["segmentation"], h, w,
                                           f"{self.path}: annotation {o['id']}")
                for o in self.objects(image_id)}
