"""Report rendering from a run folder's files: index.html and tables.tex."""
from __future__ import annotations

from pathlib import Path
from typing import Dict


def write_reports(out: Path) -> Dict[str, Path]:
    """(Re-)render every report file of run folder ``out`` from its CSVs and manifest."""
    from reports import html, latex

    return {"html": html.write_report(out), "latex": latex.write_tables(out)}
