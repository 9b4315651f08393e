"""Which COCO categories a question mentions: a category's name, its plurals and its synonyms
(:data:`SYNONYMS`) as word sequences of the question (how :mod:`datasets.loader_vqav2` finds a
question's target instances when ``evidence.json`` does not list them)."""
from __future__ import annotations

import re
from typing import Dict, List, Sequence

#: Extra words that name a category (besides the name itself and its "s"/"es" plural).
SYNONYMS: Dict[str, Sequence[str]] = {
    "circle": ("circles", "disc", "discs", "disk", "disks"),
    "square": ("squares",),
    "triangle": ("triangles",),
    "person": ("people", "man", "men", "woman", "women", "boy", "boys", "girl", "girls", "child",
               "children", "kid", "kids", "player", "players", "persons", "lady", "guy"),
    "motorcycle": ("motorbike", "motorbikes"),
    "bicycle": ("bike", "bikes"),
    "airplane": ("plane", "planes", "aeroplane", "aeroplanes", "jet", "jets"),
    "tv": ("television", "televisions"),
    "couch": ("sofa", "sofas"),
    "cell phone": ("phone", "phones", "cellphone", "cellphones"),
    "dining table": ("table", "tables"),
    "sports ball": ("ball", "balls"),
    "mouse": ("mice",),
    "knife": ("knives",),
}


def word_tokens(text: str) -> List[str]:
    """Lower-case word tokens (letters and digits)."""
    return re.findall(r"[a-z0-9]+", text.lower())


def names_for(category: str) -> List[List[str]]:
    """Word sequences that name ``category``: itself, its plural(s) and its synonyms."""
    words = word_tokens(category)
    if not words:
        return []
    head = words[-1]
    plurals = {head + "s", head + "es"}
    if head.endswith("y"):
        plurals.add(head[:-1] + "ies")
    forms = [words] + [words[:-1] + [p] for p in sorted(plurals)]
    forms += [word_tokens(s) for s in SYNONYMS.get(category.lower(), ())]
    return [f for f in forms if f]


def mentions(question_words: Sequence[str], category: str) -> bool:
    """Whether the question's words contain a word sequence that names ``category``."""
    for form in names_for(category):
        n = len(form)
        if any(list(question_words[i:i + n]) == form for i in range(len(question_words) - n + 1)):
            return True
    return False
