"""Which COCO categories a question mentions: a category's name, its plurals and its synonyms
(listed in ``datasets/data/category_synonyms.txt``, :func:`synonyms`) as word sequences of the
question (how :mod:`datasets.loader_vqav2` finds a question's target instances when
``evidence.json`` does not list them)."""
from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Dict, List, Sequence, Tuple

SYNONYMS_FILE = "data/category_synonyms.txt"


def word_tokens(text: str) -> List[str]:
    """Lower-case word tokens (letters and digits)."""
    return re.findall(r"[a-z0-9]+", text.lower())


@functools.lru_cache(maxsize=1)
def synonyms() -> Dict[str, Tuple[str, ...]]:
    """Category name → the extra words that name it, read from the suite's synonyms file."""
    text = resources.files("datasets").joinpath(SYNONYMS_FILE).read_text(encoding="utf-8")
    table: Dict[str, Tuple[str, ...]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, words = line.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"datasets/{SYNONYMS_FILE} line {n}: expected "
                             "'category = synonym, synonym'")
        table[name.strip().lower()] = tuple(w.strip().lower() for w in words.split(",")
                                            if w.strip())
    return table


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
    forms += [word_tokens(s) for s in synonyms().get(category.lower(), ())]
    return [f for f in forms if f]


def mentions(question_words: Sequence[str], category: str) -> bool:
    """Whether the question's words contain a word sequence that names ``category``."""
    for form in names_for(category):
        n = len(form)
        if any(list(question_words[i:i + n]) == form for i in range(len(question_words) - n + 1)):
            return True
    return False
