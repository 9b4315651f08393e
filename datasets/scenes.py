"""The generated scenes' vocabulary (colours, shapes, sizes, relations, semantic classes,
question families, answers), their objects and their rendering: textured background, grey
clutter, non-overlapping objects, with instance and semantic maps rasterised from the same
geometry as the pixels (see :mod:`datasets.synthetic`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

COLOURS: Dict[str, Tuple[int, int, int]] = {
    "red": (215, 45, 40),
    "green": (40, 170, 60),
    "blue": (45, 80, 215),
    "yellow": (225, 205, 35),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 8.0, "large": 12.0}  # radius in px at 96 px, scaled with the image
RELATIONS = ("left of", "right of", "above", "below")
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

#: Semantic classes (DIFNet-style segmentation stream): background, clutter, then one per shape.
SEMANTIC_CLASSES = ("background", "clutter") + SHAPES
FAMILIES = ("exist", "query_colour", "query_shape", "count", "spatial_relation",
            "relation_check", "compare")
ANSWERS = ("yes", "no") + tuple(COLOURS) + SHAPES + ("1", "2", "3")


def vocabulary() -> Dict[str, Tuple[str, ...]]:
    """The domain's words as a model trained on it reads them (a tiny model's checkpoint
    record keeps this, so loading the model never needs the generator)."""
    return {"answers": ANSWERS, "colours": tuple(COLOURS), "shapes": SHAPES,
            "sizes": tuple(SIZES), "semantic_classes": SEMANTIC_CLASSES}


@dataclass
class SceneObject:
    colour: str
    shape: str
    size: str
    x: float
    y: float
    r: float

    def matches(self, colour: Optional[str] = None, shape: Optional[str] = None) -> bool:
        return (colour is None or self.colour == colour) and (shape is None or self.shape == shape)


def _shape_mask(obj: SceneObject, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    dx, dy = xx - obj.x, yy - obj.y
    if obj.shape == "circle":
        return dx * dx + dy * dy <= obj.r * obj.r
    if obj.shape == "square":
        half = obj.r * 0.85
        return (np.abs(dx) <= half) & (np.abs(dy) <= half)
    # upward-pointing isosceles triangle inscribed in the object's box
    top, bottom = -obj.r, obj.r * 0.8
    frac = (dy - top) / (bottom - top)
    return (dy >= top) & (dy <= bottom) & (np.abs(dx) <= frac * obj.r)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    base = rng.uniform(105, 150)
    tex = np.zeros((size, size), np.float32)
    for _ in range(3):
        fx, fy = rng.uniform(1, 6, size=2)
        tex += np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 2 * np.pi))
    tint = rng.uniform(-8, 8, size=3)
    img = base + 6.0 * tex[..., None] + tint + rng.normal(0, 3.0, (size, size, 3))
    return img


def _add_clutter(rng: np.random.Generator, img: np.ndarray, sem: np.ndarray) -> None:
    size = img.shape[0]
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(rng.integers(3, 7)):
        x0, y0 = rng.uniform(0, size, size=2)
        ang = rng.uniform(0, np.pi)
        length = rng.uniform(4, 10) * size / 96
        # a short thin grey/brown stroke: distance to a segment below 1 px
        ex, ey = np.cos(ang), np.sin(ang)
        t = np.clip((xx - x0) * ex + (yy - y0) * ey, 0, length)
        d = np.hypot(xx - (x0 + t * ex), yy - (y0 + t * ey))
        m = d <= 0.9 * size / 96
        grey = rng.uniform(60, 90)
        img[m] = (grey + 20, grey + 8, grey)
        sem[m] = SEMANTIC_CLASSES.index("clutter")


def place_objects(rng: np.random.Generator, size: int) -> List[SceneObject]:
    scale = size / 96
    n = int(rng.integers(3, 7))
    objs: List[SceneObject] = []
    for _ in range(200):
        if len(objs) == n:
            break
        sz = str(rng.choice(list(SIZES)))
        r = SIZES[sz] * scale
        x, y = rng.uniform(r + 2, size - r - 2, size=2)
        if all(np.hypot(x - o.x, y - o.y) > r + o.r + 3 * scale for o in objs):
            objs.append(SceneObject(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)), sz,
                                    float(x), float(y), float(r)))
    return objs


def render(rng: np.random.Generator, size: int, objs: Sequence[SceneObject]):
    img = _background(rng, size)
    sem = np.zeros((size, size), np.uint8)
    inst = np.zeros((size, size), np.int16)
    _add_clutter(rng, img, sem)
    background, background_sem = np.clip(img, 0, 255).astype(np.uint8), sem.copy()
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    for k, o in enumerate(objs, start=1):
        m = _shape_mask(o, yy, xx)
        colour = np.array(COLOURS[o.colour], np.float32) + rng.uniform(-12, 12, size=3)
        shade = 1.0 - 0.12 * ((yy - o.y) / max(o.r, 1.0))  # a soft vertical shading
        img[m] = colour * shade[m][:, None]
        sem[m] = SEMANTIC_CLASSES.index(o.shape)
        inst[m] = k
    return np.clip(img, 0, 255).astype(np.uint8), inst, sem, background, background_sem
