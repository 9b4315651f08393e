"""COCO's segmentation forms decoded to masks, each checked before it is decoded.

An instance's ``segmentation`` is a list of polygons, an uncompressed RLE (``{"size": [h, w],
"counts": [int, …]}``, column-major run lengths starting with a run of 0s) or a compressed RLE
(the same with ``counts`` a string in COCO's 6-bit, delta-coded form). Checks before decoding:

- an RLE's ``size`` is its image's, and its run lengths are non-negative and sum to h·w:
  pycocotools' decoder does not check this and fills the rest of a short mask with whatever
  memory held, or writes past the end of a long one;
- a polygon is a flat list of finite coordinates of even length; one of fewer than three points
  has no area and is left out — pycocotools would read a polygon of four coordinates as a box.

Polygons are rasterised by pycocotools (COCO's own rule for which boundary pixels count); run
lengths are expanded here.
"""
from __future__ import annotations

from numbers import Real
from typing import List

import numpy as np

from benchmark.core.errors import InputError

FIX = "re-download or regenerate it"


def rle_string_counts(text: str) -> List[int]:
    """The run lengths of a compressed RLE string (COCO's ``rleFrString``): 5 bits per
    character after an offset of 48, a continuation bit, sign-extended; from the third number
    on, each is stored as its difference to the number two places before. ``ValueError`` for a
    character outside the code or a number cut off."""
    counts: List[int] = []
    p = 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            if p >= len(text):
                raise ValueError("the last run length is cut off")
            c = ord(text[p]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"character {text[p]!r} is not in COCO's RLE code")
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def rle_mask(counts: List[int], h: int, w: int) -> np.ndarray:
    """(h, w) bool mask of checked run lengths: alternately 0s and 1s, column-major."""
    runs = np.asarray(counts, dtype=np.int64)
    values = np.arange(len(runs)) % 2 == 1
    return np.repeat(values, runs).reshape(w, h).T.copy()


def _rle_counts(seg: dict, h: int, w: int, where: str) -> List[int]:
    size = seg.get("size")
    if not (isinstance(size, list) and size == [h, w]):
        raise InputError(f"{where}: RLE size {size!r} is not its image's [{h}, {w}] — {FIX}")
    raw = seg["counts"]
    if isinstance(raw, str):
        try:
            counts = rle_string_counts(raw)
        except ValueError as e:
            raise InputError(f"{where}: compressed RLE does not decode ({e}) — {FIX}") from None
    elif isinstance(raw, list) and all(isinstance(c, int) and not isinstance(c, bool)
                                       for c in raw):
        counts = raw
    else:
        raise InputError(f"{where}: RLE counts are neither a string nor a list of integers — "
                         f"{FIX}")
    if any(c < 0 for c in counts) or sum(counts) != h * w:
        raise InputError(f"{where}: RLE run lengths sum to {sum(counts)} (negative: "
                         f"{any(c < 0 for c in counts)}), its {h}×{w} image has {h * w} pixels "
                         f"— {FIX}")
    return counts


def _polygon_rings(seg: list, where: str) -> List[List[float]]:
    rings = []
    for k, poly in enumerate(seg):
        if not (isinstance(poly, list) and all(isinstance(v, Real) and not isinstance(v, bool)
                                               for v in poly)):
            raise InputError(f"{where}: polygon {k} is not a list of coordinates — {FIX}")
        if len(poly) % 2 or not np.isfinite(np.asarray(poly, dtype=np.float64)).all():
            raise InputError(f"{where}: polygon {k} has an odd number of coordinates or a "
                             f"non-finite one — {FIX}")
        if len(poly) >= 6:  # fewer than three points enclose nothing
            rings.append([float(v) for v in poly])
    return rings


def check_segmentation(seg, h: int, w: int, where: str):
    """``("polygons", rings)`` or ``("rle", run lengths)`` of a COCO ``segmentation`` on an
    h × w image, checked without rasterising; every problem is an :class:`InputError` naming
    ``where`` (file and annotation)."""
    if isinstance(seg, list):
        return "polygons", _polygon_rings(seg, where)
    if isinstance(seg, dict) and "counts" in seg:
        return "rle", _rle_counts(seg, h, w, where)
    raise InputError(f"{where}: segmentation is neither polygons nor an RLE — {FIX}")


def segmentation_mask(seg, h: int, w: int, where: str) -> np.ndarray:
    """The (h, w) bool mask of a COCO ``segmentation`` on an h × w image
    (:func:`check_segmentation` first)."""
    kind, parts = check_segmentation(seg, h, w, where)
    if kind == "rle":
        return rle_mask(parts, h, w)
    if not parts:
        return np.zeros((h, w), bool)
    from pycocotools import mask as mask_utils

    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(parts, h, w))) > 0
