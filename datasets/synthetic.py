"""The embedded default dataset: generated CLEVR-like scenes with questions and exact masks.

Every sample is one image and one question, generated from ``numpy.random.default_rng((seed,
split, index))`` so any sample can be rebuilt alone, on any machine, bit for bit. Scenes hold 3–6
objects (3 shapes × 4 colours × 2 sizes) on a textured background with grey clutter that no
question asks about. Seven question families are generated, each keeping a *distractor*: an
object that shares an attribute with the question's target but is not what the question asks
about, so that "pointing at the target" differs from "pointing at an object".

Masks are rasterised with numpy from the same geometry as the pixels, so they are exact:
``target_mask`` (what the question is about: the objects of its program's last step, CLEVR-XAI's
"GT Unique" — the queried object, every counted object, and *both* objects of a comparison or a
relation check, which the question is about symmetrically), ``evidence_mask`` (every object the
answer depends on: also the anchor of a spatial relation), ``distractor_mask`` (the near-miss
object, for the grounding control).

Version history: 1.1 — targets of ``compare`` and ``relation_check`` are both objects (1.0: the
first one only); images, questions and answers unchanged.

``Sample.without(k)`` re-renders the scene without object k (background, clutter and every
other object unchanged), the counterfactual behind the ``object_faithfulness`` metrics.

``semantic_map`` holds shape classes only (colour is left out on purpose: the fused model's
segmentation stream then carries shape but not colour).

Bump :data:`GENERATOR_VERSION` whenever output changes; ``tests/test_synthetic.py`` pins hashes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

GENERATOR_VERSION = "1.1"

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
SPLITS = {"train": 0, "val": 1, "test": 2}
DEFAULT_SPLIT_SIZES = {"train": 10**9, "val": 500, "test": 600}  # test: ≥ 500 with a target region


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


@dataclass
class Sample:
    """One (image, question) pair with everything the metrics need."""

    sample_id: str
    image: np.ndarray  # (H, W, 3) uint8
    question: str
    answer: str
    family: str
    itm_label: int  # 1 when every object the question mentions exists in the image
    itm_negative: Optional[str]  # a hard negative: one attribute swapped so no object matches
    target_mask: np.ndarray  # (H, W) bool
    evidence_mask: np.ndarray
    distractor_mask: np.ndarray
    instance_map: np.ndarray  # (H, W) int16, 0 = background/clutter, k = objects[k-1]
    semantic_map: np.ndarray  # (H, W) uint8, indices into SEMANTIC_CLASSES
    objects: List[SceneObject]
    program: Dict[str, object] = field(default_factory=dict)
    background: Optional[np.ndarray] = None  # (H, W, 3) uint8: the scene before any object
    background_semantic: Optional[np.ndarray] = None  # its semantic map (background, clutter)

    def without(self, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """(image, semantic map) of the same scene re-rendered without object ``k`` (1-based, as
        in ``instance_map``): its pixels show the background and clutter that were drawn under
        it; every other pixel is unchanged (objects never overlap), so the change is exact."""
        gone = self.instance_map == k
        image, sem = self.image.copy(), self.semantic_map.copy()
        image[gone] = self.background[gone]
        sem[gone] = self.background_semantic[gone]
        return image, sem

    @property
    def answers(self) -> List[str]:
        """Ten annotator answers, VQA-style (all agree on generated data)."""
        return [self.answer] * 10


# ---------------------------------------------------------------------------------------------
# geometry and rendering


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


def _place_objects(rng: np.random.Generator, size: int) -> List[SceneObject]:
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


def _render(rng: np.random.Generator, size: int, objs: Sequence[SceneObject]):
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


# ---------------------------------------------------------------------------------------------
# questions


def _relation_holds(t: SceneObject, a: SceneObject, rel: str, margin: float) -> bool:
    if rel == "left of":
        return t.x < a.x - margin
    if rel == "right of":
        return t.x > a.x + margin
    if rel == "above":
        return t.y < a.y - margin
    return t.y > a.y + margin


def _unique(objs, **desc) -> bool:
    return sum(o.matches(**desc) for o in objs) == 1


def _sharers(objs, t: SceneObject, exclude: Sequence[SceneObject] = ()) -> List[SceneObject]:
    """Objects other than ``t`` sharing exactly one of colour/shape with it."""
    return [o for o in objs if o is not t and o not in exclude
            and ((o.colour == t.colour) != (o.shape == t.shape))]


Built = Tuple[str, str, List[SceneObject], List[SceneObject], Optional[SceneObject], dict]
# (question, answer, targets, evidence, distractor, program)


def _plural(shape: str) -> str:
    return shape + "s"


def _q_exist(rng, objs, margin, want_yes) -> Optional[Built]:
    if want_yes:
        t = objs[int(rng.integers(len(objs)))]
        ds = _sharers(objs, t)
        if not _unique(objs, colour=t.colour, shape=t.shape) or not ds:
            return None
        refs = [{"colour": t.colour, "shape": t.shape}]
        return (f"is there a {t.colour} {t.shape}?", "yes", [t], [t], ds[0],
                {"referents": refs})
    c = str(rng.choice(list(COLOURS)))
    s = str(rng.choice(SHAPES))
    near = [o for o in objs if o.matches(colour=c) != o.matches(shape=s)]
    if any(o.matches(c, s) for o in objs) or not any(o.colour == c for o in objs) \
            or not any(o.shape == s for o in objs):
        return None
    return (f"is there a {c} {s}?", "no", [], [], near[0], {"referents": [{"colour": c, "shape": s}]})


def _q_query_colour(rng, objs, margin, want_yes) -> Optional[Built]:
    t = objs[int(rng.integers(len(objs)))]
    ds = [o for o in objs if o is not t and o.colour == t.colour]
    if not _unique(objs, shape=t.shape) or not ds:
        return None
    return (f"what colour is the {t.shape}?", t.colour, [t], [t], ds[0],
            {"referents": [{"shape": t.shape}]})


def _q_query_shape(rng, objs, margin, want_yes) -> Optional[Built]:
    t = objs[int(rng.integers(len(objs)))]
    ds = [o for o in objs if o is not t and o.shape == t.shape]
    if not _unique(objs, colour=t.colour) or not ds:
        return None
    return (f"what shape is the {t.colour} object?", t.shape, [t], [t], ds[0],
            {"referents": [{"colour": t.colour}]})


def _q_count(rng, objs, margin, want_yes) -> Optional[Built]:
    pivot = objs[int(rng.integers(len(objs)))]
    if rng.random() < 0.5:
        desc, text = {"colour": pivot.colour}, f"how many {pivot.colour} objects are there?"
        ds = [o for o in objs if o.colour != pivot.colour and o.shape == pivot.shape]
    else:
        desc, text = {"shape": pivot.shape}, f"how many {_plural(pivot.shape)} are there?"
        ds = [o for o in objs if o.shape != pivot.shape and o.colour == pivot.colour]
    ts = [o for o in objs if o.matches(**desc)]
    if not ds or len(ts) > 3:
        return None
    return text, str(len(ts)), ts, ts, ds[0], {"referents": [desc]}


def _q_spatial_relation(rng, objs, margin, want_yes) -> Optional[Built]:
    a = objs[int(rng.integers(len(objs)))]
    rel = str(rng.choice(RELATIONS))
    if not _unique(objs, colour=a.colour, shape=a.shape):
        return None
    for t in rng.permutation(len(objs)):
        t = objs[int(t)]
        if t is a or not _relation_holds(t, a, rel, margin):
            continue
        same = [o for o in objs if o is not t and o is not a and o.shape == t.shape]
        sat = [o for o in same if _relation_holds(o, a, rel, 0.0)]
        far = [o for o in same if _relation_holds(o, a, OPPOSITE[rel], margin)]
        if sat or not far:
            continue
        refs = [{"shape": t.shape, "relation": rel, "anchor": {"colour": a.colour, "shape": a.shape}},
                {"colour": a.colour, "shape": a.shape}]
        return (f"what colour is the {t.shape} {rel} the {a.colour} {a.shape}?", t.colour,
                [t], [t, a], far[0], {"referents": refs})
    return None


def _pair(rng, objs) -> Optional[Tuple[SceneObject, SceneObject, SceneObject]]:
    i, j = rng.choice(len(objs), size=2, replace=False)
    a, b = objs[int(i)], objs[int(j)]
    if not (_unique(objs, colour=a.colour, shape=a.shape)
            and _unique(objs, colour=b.colour, shape=b.shape)):
        return None
    ds = _sharers(objs, a, exclude=[b])
    return (a, b, ds[0]) if ds else None


def _q_relation_check(rng, objs, margin, want_yes) -> Optional[Built]:
    p = _pair(rng, objs)
    if p is None:
        return None
    a, b, d = p
    rel = str(rng.choice(RELATIONS))
    asked = rel if want_yes else OPPOSITE[rel]
    if not _relation_holds(a, b, rel, margin):
        return None
    refs = [{"colour": a.colour, "shape": a.shape}, {"colour": b.colour, "shape": b.shape}]
    return (f"is the {a.colour} {a.shape} {asked} the {b.colour} {b.shape}?",
            "yes" if want_yes else "no", [a, b], [a, b], d, {"referents": refs, "relation": asked})


def _q_compare(rng, objs, margin, want_yes) -> Optional[Built]:
    p = _pair(rng, objs)
    if p is None:
        return None
    a, b, d = p
    same = a.size == b.size
    if same != want_yes:
        return None
    refs = [{"colour": a.colour, "shape": a.shape}, {"colour": b.colour, "shape": b.shape}]
    return (f"are the {a.colour} {a.shape} and the {b.colour} {b.shape} the same size?",
            "yes" if same else "no", [a, b], [a, b], d, {"referents": refs})


BUILDERS: Dict[str, Callable] = {
    "exist": _q_exist, "query_colour": _q_query_colour, "query_shape": _q_query_shape,
    "count": _q_count, "spatial_relation": _q_spatial_relation,
    "relation_check": _q_relation_check, "compare": _q_compare,
}


def _referents_exist(objs, program: dict) -> bool:
    for ref in program["referents"]:
        desc = {k: ref[k] for k in ("colour", "shape") if k in ref}
        cands = [o for o in objs if o.matches(**desc)]
        if "relation" in ref:
            anchors = [o for o in objs if o.matches(**ref["anchor"])]
            cands = [o for o in cands for a in anchors if _relation_holds(o, a, ref["relation"], 0.0)]
        if not cands:
            return False
    return True


def _hard_negative(rng, question: str, objs, program: dict) -> Optional[str]:
    """Swap one colour or shape word so that some referent no longer exists in the image."""
    options = []
    for ref in program["referents"]:
        for key, values in (("colour", list(COLOURS)), ("shape", list(SHAPES))):
            if key not in ref:
                continue
            for v in values:
                if v == ref[key]:
                    continue
                swapped = {**ref, key: v}
                new_prog = {"referents": [swapped]}
                if not _referents_exist(objs, new_prog):
                    options.append((ref[key], v))
    if not options:
        return None
    old, new = options[int(rng.integers(len(options)))]
    words = question[:-1].split(" ")
    # swap the first occurrence of the word (plural-aware), keeping the rest of the text
    for i, w in enumerate(words):
        if w == old or w == _plural(old):
            words[i] = new if w == old else _plural(new)
            break
    return " ".join(words) + "?"


def _mask_of(inst: np.ndarray, objs: Sequence[SceneObject], chosen: Sequence[SceneObject]) -> np.ndarray:
    ids = [objs.index(o) + 1 for o in chosen]
    return np.isin(inst, ids) if ids else np.zeros(inst.shape, bool)


def generate(seed: int, split: str, index: int, image_size: int = 96,
             family: Optional[str] = None) -> Sample:
    """Build sample ``index`` of ``split``: deterministic in ``(seed, split, index, image_size)``.

    The family cycles through :data:`FAMILIES` by index (balanced families) unless given.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    rng = np.random.default_rng((seed, SPLITS[split], index))
    family = family or FAMILIES[index % len(FAMILIES)]
    margin = 4.0 * image_size / 96
    want_yes = bool(rng.random() < 0.5)  # drawn once so yes/no answers stay balanced
    for _ in range(1000):
        objs = _place_objects(rng, image_size)
        built = BUILDERS[family](rng, objs, margin, want_yes)
        if built is None:
            continue
        question, answer, targets, evidence, distractor, program = built
        negative = _hard_negative(rng, question, objs, program)
        if negative is None and family != "exist":
            continue
        break
    else:  # pragma: no cover - the builders succeed within a few tries
        raise RuntimeError(f"could not generate a {family} question for {split}/{index}")
    img, inst, sem, background, background_sem = _render(rng, image_size, objs)
    label = int(_referents_exist(objs, program))
    return Sample(
        sample_id=f"{split}-{index:06d}", image=img, question=question, answer=answer,
        family=family, itm_label=label, itm_negative=negative if label else None,
        target_mask=_mask_of(inst, objs, targets), evidence_mask=_mask_of(inst, objs, evidence),
        distractor_mask=_mask_of(inst, objs, [distractor]) if distractor else np.zeros_like(inst, bool),
        instance_map=inst, semantic_map=sem, objects=list(objs),
        program={**program, "family": family, "answer": answer},
        background=background, background_semantic=background_sem,
    )
