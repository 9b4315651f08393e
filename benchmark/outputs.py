"""The run folder: tidy CSVs and the manifest, each written atomically (temp file, then rename)."""
from __future__ import annotations

import csv
import io
import json
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Dict, Iterable, List, Sequence

import numpy as np

from benchmark.stats import bootstrap_ci

RESULT_COLUMNS = ["model", "method", "metric", "region", "sample_id", "question_type", "correct",
                  "value", "note"]
SUMMARY_COLUMNS = ["model", "method", "metric", "region", "subset", "n", "n_excluded", "mean",
                   "ci_low", "ci_high"]
PACKAGES = ("torch", "torchvision", "salesforce-lavis", "transformers", "timm", "captum", "numpy",
            "scipy", "pandas", "scikit-image", "jinja2", "matplotlib")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def fmt(v) -> str:
    """Stable text for CSV cells: floats with 6 significant digits, NaN/None as empty."""
    if v is None or v == "":
        return ""
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    return str(v)


def csv_text(rows: Iterable[dict], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([fmt(r.get(c, "")) for c in columns])
    return buf.getvalue()


def summarise(rows: List[dict], seed: int) -> List[dict]:
    """One row per (model, method, metric, region, subset) with mean and 95% bootstrap CI.

    ``subset`` is ``all`` or ``correct`` (only the questions the model answered correctly).
    """
    groups: Dict[tuple, List[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["method"], r["metric"], r["region"]), []).append(r)
    out = []
    for key in sorted(groups):
        for subset in ("all", "correct"):
            rs = groups[key] if subset == "all" else [r for r in groups[key]
                                                      if r.get("correct") not in ("", None)
                                                      and float(r["correct"]) >= 1.0]
            vals = [float(r["value"]) for r in rs if r["value"] != ""]
            mean, lo, hi = bootstrap_ci(vals, seed=seed)
            out.append(dict(zip(SUMMARY_COLUMNS, (*key, subset, len(vals), len(rs) - len(vals),
                                                  mean, lo, hi))))
    return out


def git_commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def package_versions() -> Dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = ""
    return out


def manifest(config: dict, result, argv: Sequence[str]) -> dict:
    """Everything needed to reproduce and cite the run."""
    repo = Path(__file__).resolve().parent.parent
    return {
        "suite": "vqa-xai-bench",
        "command": ["python", "-m", "benchmark", *argv],
        "config": config,
        "seed": config.get("seed"),
        "git_commit": git_commit(repo),
        "packages": package_versions(),
        "python": platform.python_version(),
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpus": os.cpu_count()},
        "dataset": result.dataset_info,
        "models": {name: {"fingerprint": info.get("fingerprint"),
                          "itm_accuracy": info.get("itm_accuracy"),
                          "vqa_accuracy": info.get("vqa_accuracy"),
                          "itm_by_family": info.get("itm_by_family"),
                          "vqa_by_family": info.get("vqa_by_family"),
                          "checkpoint_sha256": info.get("sha256"),
                          "config": info.get("config")}
                   for name, info in result.model_info.items()},
        "skipped_models": result.skipped,
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
    }


def write_run(out: Path, config: dict, result, argv: Sequence[str]) -> Dict[str, Path]:
    """Write results.csv, summary.csv and manifest.json; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    rows = sorted(result.rows, key=lambda r: (r["model"], r["method"], r["metric"], r["region"],
                                              r["sample_id"]))
    summary = summarise(rows, seed=int(config.get("seed", 0)))
    paths = {"results": out / "results.csv", "summary": out / "summary.csv",
             "manifest": out / "manifest.json"}
    write_atomic(paths["results"], csv_text(rows, RESULT_COLUMNS))
    write_atomic(paths["summary"], csv_text(summary, SUMMARY_COLUMNS))
    write_atomic(paths["manifest"], json.dumps(manifest(config, result, argv), indent=1,
                                               sort_keys=True, default=str))
    return paths
