"""COCO panoptic segmentation as the fused models' segmentation stream (DIFNet's 133 classes).

Reads the official files unchanged: ``panoptic_<split>2017.json`` (``images``, ``annotations``
with ``file_name`` and ``segments_info`` of ``{id, category_id, iscrowd}``, ``categories``) and
the PNG folder beside it with the same name (``panoptic_<split>2017/``), whose pixels hold the
segment id as R + 256·G + 256²·B (COCO's panopticapi convention; 0 = unlabelled). The classes
are the file's categories in their listed order (COCO: 80 things then 53 stuff = 133, DIFNet's
layout). A patch's histogram is the fraction of its pixels in each class; unlabelled pixels
count for no class, so a patch's row sums to its labelled share.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from benchmark.core.errors import InputError
from datasets.base import decode_rgb
from datasets.files import list_of, read_json

RELEASE = "COCO panoptic"


class PanopticAnnotations:
    """One ``panoptic_<split>2017.json`` and its PNG folder, or a folder of several (COCO's
    annotations folder: ``panoptic_train2017.json`` and ``panoptic_val2017.json`` with their PNG
    folders; VQA v2's val2014 images are spread over both 2017 splits). The files must list the
    same categories; an image is read from the file that annotates it."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        files = sorted(path.glob("panoptic_*.json")) if path.is_dir() else [path]
        if not files:
            raise InputError(f"no panoptic_<split>2017.json in {path} — pass the folder COCO's "
                             "panoptic annotations were unpacked into, or one such file")
        self.json_path = path
        self._anns: Dict[int, Tuple[dict, Path, Path]] = {}
        cats = None
        for json_path in files:
            obj = read_json(json_path, "COCO panoptic annotations",
                            "pass --segmentation panoptic:PATH/panoptic_<split>2017.json")
            these = list_of(obj, "categories", json_path, ("id", "name"), "category", RELEASE)
            if cats is not None and [c["id"] for c in these] != [c["id"] for c in cats]:
                raise InputError(f"{json_path} lists other categories than {files[0]} — use "
                                 "panoptic files of the same COCO release")
            cats = these
            png_dir = json_path.with_suffix("")
            if not png_dir.is_dir():
                raise InputError(f"missing folder {png_dir} (the PNGs of {json_path}) — "
                                 "unpack COCO's panoptic PNGs beside the JSON file")
            for a in list_of(obj, "annotations", json_path,
                             ("image_id", "file_name", "segments_info"), "annotation", RELEASE):
                self._anns[int(a["image_id"])] = (a, png_dir, json_path)
        self.class_of = {c["id"]: k for k, c in enumerate(cats)}
        self.n_classes = len(cats)

    def class_map(self, image_id: int) -> np.ndarray:
        """(H, W) class index per pixel, -1 where unlabelled."""
        found = self._anns.get(int(image_id))
        if found is None:
            raise InputError(f"{self.json_path} has no annotation for image {image_id} — pass "
                             "the folder holding the panoptic files of every 2017 split (an "
                             "image of a 2014 split may be in either)")
        ann, png_dir, json_path = found
        path = png_dir / ann["file_name"]
        if not path.is_file():
            raise InputError(f"missing panoptic PNG {path} (image {image_id}) — unpack COCO's "
                             "panoptic PNGs beside the JSON file")
        rgb = decode_rgb(path, f"image {image_id}").astype(np.int64)
        ids = rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]
        out = np.full(ids.shape, -1, np.int64)
        for seg in ann["segments_info"]:
            cls = self.class_of.get(seg.get("category_id"))
            if cls is None:
                raise InputError(f"{json_path}: segment {seg.get('id')} of image "
                                 f"{image_id} has unknown category_id {seg.get('category_id')} "
                                 "— re-download it")
            out[ids == seg["id"]] = cls
        return out

    def histogram(self, image_id: int, grid: int) -> np.ndarray:
        """(grid², C) fraction of each patch's pixels in each class (any image size: a pixel
        belongs to the patch its position falls in)."""
        cls = self.class_map(image_id)
        h, w = cls.shape
        rows = np.arange(h) * grid // h
        cols = np.arange(w) * grid // w
        patch = rows[:, None] * grid + cols[None, :]
        area = np.bincount(patch.ravel(), minlength=grid * grid).astype(np.float32)
        keep = cls >= 0
        counts = np.bincount(patch[keep] * self.n_classes + cls[keep],
                             minlength=grid * grid * self.n_classes).astype(np.float32)
        return counts.reshape(grid * grid, self.n_classes) / area[:, None]


@functools.lru_cache(maxsize=2)
def panoptic(path: str) -> PanopticAnnotations:
    """The parsed panoptic file or folder of files (cached: one parse per run)."""
    return PanopticAnnotations(Path(path))
