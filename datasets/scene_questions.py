"""The seven question families of the generated scenes, each built with its target,
evidence and near-miss distractor objects and its program, and the hard negatives of the
image-text matching task (see :mod:`datasets.synthetic`)."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple


from datasets.scenes import COLOURS, OPPOSITE, RELATIONS, SHAPES, SceneObject


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


def referents_exist(objs, program: dict) -> bool:
    for ref in program["referents"]:
        desc = {k: ref[k] for k in ("colour", "shape") if k in ref}
        cands = [o for o in objs if o.matches(**desc)]
        if "relation" in ref:
            anchors = [o for o in objs if o.matches(**ref["anchor"])]
            cands = [o for o in cands for a in anchors if _relation_holds(o, a, ref["relation"], 0.0)]
        if not cands:
            return False
    return True


def hard_negative(rng, question: str, objs, program: dict) -> Optional[str]:
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
                if not referents_exist(objs, new_prog):
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
