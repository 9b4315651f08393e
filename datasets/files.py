"""Reading a dataset's official files: every problem is one :class:`InputError` line naming the
file, the record and the fix (the CLI prints it and exits 2)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from benchmark.core.errors import InputError, RepeatedKey


def _no_repeated_keys(pairs):
    """A JSON object's pairs as a dict, refusing a key that appears twice (``json`` would keep
    the last silently: a record lost, or two merged)."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise RepeatedKey(k)
        out[k] = v
    return out


def read_json(path: Path, what: str, fix: str = "put the official file in --data-root"):
    """The parsed JSON file at ``path`` (``what`` names it in errors; ``fix`` says where it
    comes from); an object with a repeated key is an error."""
    if not path.is_file():
        raise InputError(f"missing {what} file {path} — {fix}")
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f, object_pairs_hook=_no_repeated_keys)
    except RepeatedKey as e:
        raise InputError(f"{path}: key {e.args[0]!r} appears twice in one object — "
                         "re-download or regenerate it") from None
    except json.JSONDecodeError as e:
        raise InputError(f"malformed JSON in {path}: line {e.lineno} column {e.colno}: {e.msg} — "
                         "re-download or regenerate it") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {path}: {e} — re-download or regenerate it") from None


def require(obj, keys: Sequence[str], path: Path, where: str, release: str) -> None:
    """That ``obj`` (``where`` in ``path``) is an object with every key of ``keys``."""
    if not isinstance(obj, dict):
        raise InputError(f"{path}: {where} is a {type(obj).__name__}, expected an object — "
                         f"is this the official {release} file?")
    for k in keys:
        if k not in obj:
            raise InputError(f"{path}: {where} has no {k!r} key — is this the official {release} "
                             "file? re-download or regenerate it")


def list_of(obj, key: str, path: Path, item_keys: Sequence[str], what: str, release: str) -> list:
    """``obj[key]``, a list whose every item is an object with ``item_keys``."""
    require(obj, [key], path, "the top level", release)
    items = obj[key]
    if not isinstance(items, list):
        raise InputError(f"{path}: {key!r} is not a list — re-download or regenerate it")
    for i, item in enumerate(items):
        require(item, item_keys, path, f"{what} {i}", release)
    return items


def data_root(root, dataset: str, expects: str) -> Path:
    """``--data-root`` as a folder, or an :class:`InputError` saying what it must hold."""
    if root is None or str(root) == "":
        raise InputError(f"dataset {dataset} needs --data-root DIR: a folder holding {expects}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise InputError(f"--data-root {path} is not a folder — pass the folder holding "
                         f"{expects}")
    return path


def by_id(items: list, key: str, path: Path, what: str) -> dict:
    """``items`` keyed by ``item[key]``, an integer id (as COCO, VQA and CLEVR write them); an
    id that two items share names both in an :class:`InputError` (one of them would be lost
    silently)."""
    out: dict = {}
    for i, item in enumerate(items):
        k = item[key]
        if not isinstance(k, int) or isinstance(k, bool):
            raise InputError(f"{path}: {what} {i} has {key} {k!r}, expected an integer "
                             "— re-download or regenerate it")
        if k in out:
            raise InputError(f"{path}: {what}s {out[k][0]} and {i} share {key} {k!r} — "
                             "re-download or regenerate it")
        out[k] = (i, item)
    return {k: item for k, (_, item) in out.items()}
