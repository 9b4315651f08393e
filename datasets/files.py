"""Reading a dataset's official files: every problem is one :class:`InputError` line naming the
file, the record and the fix (the CLI prints it and exits 2)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from benchmark.errors import InputError


def read_json(path: Path, what: str, fix: str = "put the official file in --data-root"):
    """The parsed JSON file at ``path`` (``what`` names it in errors; ``fix`` says where it
    comes from)."""
    if not path.is_file():
        raise InputError(f"missing {what} file {path} — {fix}")
    try:
        with path.open("r", encoding="utf-8") as f:
            return json.load(f)
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
