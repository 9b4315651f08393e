"""run.log in the run folder: every message also goes to stderr."""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Callable, Iterator


@contextlib.contextmanager
def run_log(out: Path) -> Iterator[Callable[[str], None]]:
    """Yield ``log(message, echo=True)``: appends a timestamped line to ``out/run.log`` and echoes it."""
    with open(Path(out) / "run.log", "a", encoding="utf-8") as fh:
        def log(message: str, echo: bool = True) -> None:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
            fh.flush()
            if echo:
                print(message, file=sys.stderr)

        yield log
