"""Commands over a finished run folder: ``python -m benchmark report RUN_DIR`` (re-render the
report from its CSVs) and ``python -m benchmark reproduce RUN_DIR/manifest.json`` (rerun its
command and compare the bytes)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from benchmark.cli.args import report_parser, reproduce_parser, without_out
from benchmark.core.errors import UsageError
from benchmark.engine.run_lock import run_folder_lock


def cmd_reproduce(argv: Sequence[str]) -> int:
    p = reproduce_parser()
    args = p.parse_args(argv)
    path = Path(args.manifest)
    try:
        manifest = json.loads(path.read_text())
        command = manifest["command"][3:]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"cannot read a run command from {path}: {e}") from None
    original = path.parent
    out = Path(args.out) if args.out else original / "reproduce"
    rerun = without_out(command) + ["--out", str(out)] + (["--quiet"] if args.quiet else [])
    from benchmark.cli.main import cmd_run

    code = cmd_run(rerun)
    if code:
        return code
    from benchmark.engine.outputs import differing_files

    differ = differing_files(original, out, ("results.csv", "summary.csv"))
    if manifest.get("git_commit") and manifest["git_commit"] != outputs_git_commit():
        print(f"note: the run was made at commit {manifest['git_commit'][:12]}, this is "
              f"{outputs_git_commit()[:12]}", file=sys.stderr)
    if differ:
        print(f"bytes differ: {', '.join(differ)} ({original} vs {out})")
        return 3
    print(f"identical bytes: results.csv and summary.csv of {original} and {out}")
    return 0


def outputs_git_commit() -> str:
    from benchmark.engine.provenance import git_commit

    return git_commit(Path(__file__).resolve().parents[2])


def cmd_report(argv: Sequence[str]) -> int:
    p = report_parser()
    args = p.parse_args(argv)
    out = Path(args.run_dir)
    for name in ("summary.csv", "manifest.json"):
        if not (out / name).exists():
            raise UsageError(f"{out / name} not found: is {out} a run folder?")
    import reports

    with run_folder_lock(out, f"python -m benchmark report {out}"):
        paths = reports.write_reports(out)
    print(f"re-rendered {', '.join(str(p) for p in paths.values())}")
    return 0
