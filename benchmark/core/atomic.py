"""Atomic writes: a reader sees the old file or the new one, never a half-written one."""
from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path: Path, data: str | bytes | Callable[[BinaryIO], None]) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``;
    a callable is handed the open file instead (``lambda fh: torch.save(state, fh)``), so a
    large object is streamed rather than held twice in memory."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        if callable(data):
            data(fh)
        else:
            fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files :func:`write_atomic` left in ``folder`` when a process was
    killed mid-write (never read: the final name still holds the previous file); only for a
    folder that one process writes to."""
    for f in Path(folder).glob(".*.tmp-*"):
        f.unlink(missing_ok=True)
