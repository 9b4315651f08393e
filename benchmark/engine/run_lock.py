"""One process per run folder at a time.

A run takes an exclusive ``flock`` on ``<out>/.lock`` for as long as it computes into the
folder and writes its process id and command there. A second process started on the same
folder is refused with one line naming the first; two runs never race on the same units. The
operating system releases the lock when the holding process ends, however it ends (a SIGKILL
included), so a killed run never leaves the folder locked: the file may stay, the lock does not.
(``flock`` is local to one machine: two machines sharing a folder over NFS are not kept apart.)
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Iterator

from benchmark.core.errors import FolderBusy

LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_folder_lock(out: Path, command: str) -> Iterator[None]:
    """Hold ``out``'s lock while the block runs (:class:`FolderBusy` when another holds it)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    fh = open(out / LOCK_NAME, "a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise FolderBusy(f"run folder {out} is in use by {holder}; wait for it to end, or "
                             "use another --out") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"process {os.getpid()} ({command}, since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        fh.flush()
        yield
    finally:
        fh.close()  # closing the descriptor releases the lock
