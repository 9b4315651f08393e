"""The unit cache: one atomic JSON file per computed unit under ``<out>/cache`` (resume)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from benchmark.core.errors import InputError
from benchmark.core.atomic import write_atomic


class UnitCache:
    """Atomic per-unit JSON files under ``<out>/cache`` (the resume mechanism)."""

    def __init__(self, out: Optional[Path], digest: str, device: str = "cpu",
                 dataset: Optional[str] = None, pipeline: Optional[str] = None,
                 threads: Optional[int] = None) -> None:
        self.root = None if out is None else Path(out) / "cache"
        if self.root is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._stamp("config-digest", digest, "results of a different configuration; use another "
                    "--out folder or delete it")
        # CPU and GPU kernels differ in the last bits: one run folder holds one device's units,
        # so that its CSVs are those of a single device
        self._stamp("device", device.split(":")[0], "units computed on another device ({held}); "
                    "rerun with --device {held} or use another --out folder")
        if threads is not None:  # kernels sum in another order with another thread count
            self._stamp("threads", str(threads), "units summed with {held} torch thread(s) per "
                        "process; resume with the same engine (--workers 2: one thread each) "
                        "or use another --out folder")
        if dataset is not None:  # the same options over changed files: other records per batch
            self._stamp("dataset", dataset, "units of other data (dataset fingerprint {held}): "
                        "the dataset's files changed since; use another --out folder")
        if pipeline is not None:  # the same --pnp-vqa name over other weights: other answers
            self._stamp("pnp-vqa", pipeline, "units of another PNP-VQA pipeline (weights sha256 "
                        "{held}): its files changed since; restore them or use another --out "
                        "folder")

    def _stamp(self, name: str, value: str, conflict: str) -> None:
        stamp = self.root / name
        if stamp.exists() and stamp.read_text() != value:
            raise InputError(f"{self.root} holds " + conflict.format(held=stamp.read_text()))
        if not stamp.exists():
            write_atomic(stamp, value)

    def _path(self, *parts: str) -> Path:
        # a model spec may hold a path (``hf-blip-itm:/models/blip``): one file name per part
        return self.root.joinpath(*(quote(p, safe="@") for p in parts)).with_suffix(".json")

    def has(self, *parts: str) -> bool:
        """Whether the unit is cached (without reading it)."""
        return self.root is not None and self._path(*parts).exists()

    def get(self, *parts: str):
        if self.root is None:
            return None
        p = self._path(*parts)
        return json.loads(p.read_text()) if p.exists() else None

    def put(self, value, *parts: str) -> None:
        if self.root is None:
            return
        p = self._path(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(p, json.dumps(value, allow_nan=True))


class MemoryCache:
    """The unit cache's interface over a dict keyed by the parts' tuple: what a remote worker
    reads from (``entries``) and what it computed (``new``), returned to the driver, which puts
    them into the run folder's :class:`UnitCache`."""

    def __init__(self, entries: Optional[dict] = None) -> None:
        self.entries = dict(entries or {})
        self.new: dict = {}

    def has(self, *parts: str) -> bool:
        return parts in self.entries

    def get(self, *parts: str):
        return self.entries.get(parts)

    def put(self, value, *parts: str) -> None:
        self.entries[parts] = self.new[parts] = value
