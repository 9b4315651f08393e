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
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from benchmark.engine.comparisons import COLUMNS as COMPARISON_COLUMNS
from benchmark.engine.comparisons import comparisons
from benchmark.engine.stability import COLUMNS as STABILITY_COLUMNS
from benchmark.engine.stability import stability
from benchmark.core.atomic import write_atomic
from benchmark.engine.stats import bootstrap_ci

RESULT_COLUMNS = ["model", "method", "metric", "region", "sample_id", "question_type", "correct",
                  "value", "note"]
SUMMARY_COLUMNS = ["model", "method", "metric", "region", "subset", "question_type", "n",
                   "n_excluded", "mean", "ci_low", "ci_high", "higher_is_better"]
CURVE_COLUMNS = ["model", "method", "metric", "x", "value", "n", "ci_low", "ci_high"]
SANITY_COLUMNS = ["model", "method", "test", "index", "stage", "statistic", "n", "mean",
                  "ci_low", "ci_high"]
PACKAGES = ("torch", "torchvision", "salesforce-lavis", "transformers", "timm", "captum", "numpy",
            "scipy", "pandas", "scikit-image", "jinja2", "matplotlib")


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


def _value(r: dict) -> float:
    v = r.get("value")
    return float("nan") if v in (None, "") else float(v)


def _groups(rows: List[dict]) -> Dict[tuple, List[dict]]:
    groups: Dict[tuple, List[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["method"], r["metric"], r["region"]), []).append(r)
    return groups


def summarise(rows: List[dict], seed: int, higher_is_better: Dict[str, bool]) -> List[dict]:
    """Mean and 95% bootstrap CI per (model, method, metric, region) × subset × question type.

    ``subset`` is ``all`` or ``correct`` (questions the model answered correctly);
    ``question_type`` is ``all`` or one family. Excluded samples (empty value) are counted.
    """
    out = []
    for key, rs in sorted(_groups(rows).items()):
        families = ["all"] + sorted({r["question_type"] for r in rs})
        for subset in ("all", "correct"):
            sub = rs if subset == "all" else [r for r in rs if (r.get("correct") or 0) >= 1.0]
            for fam in families:
                part = sub if fam == "all" else [r for r in sub if r["question_type"] == fam]
                vals = [_value(r) for r in part]
                finite = [v for v in vals if np.isfinite(v)]
                mean, lo, hi = bootstrap_ci(finite, seed=seed)
                out.append(dict(zip(SUMMARY_COLUMNS, (
                    *key, subset, fam, len(finite), len(part) - len(finite), mean, lo, hi,
                    higher_is_better.get(key[2], True)))))
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


def _pipeline_entry(config: dict) -> Optional[dict]:
    """The run's PNP-VQA pipeline: its name and the sha256 of its weights (``None`` when they
    are not on disk)."""
    if config.get("pnp_vqa") is None:
        return None
    from benchmark.models.pnp_pipelines import pipeline_fingerprint

    return {"name": config["pnp_vqa"], "sha256": pipeline_fingerprint(
        config["pnp_vqa"], config.get("weights_dir"), config.get("tokenizer_dir"))}


def manifest(config: dict, result, argv: Sequence[str]) -> dict:
    """Everything needed to reproduce and cite the run."""
    repo = Path(__file__).resolve().parents[2]
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
                          "counterfactual": info.get("counterfactual"),
                          "segmentation": info.get("segmentation"),
                          "source": info.get("source"),
                          "images_per_forward": info.get("images_per_forward"),
                          "config": info.get("config"),
                          "recipe": info.get("recipe")}
                   for name, info in result.model_info.items()},
        "methods": result.method_info,
        "pnp_vqa": _pipeline_entry(config),
        "skipped_models": result.skipped,
        "nonfinite_maps": result.nonfinite_maps,
        "higher_is_better": result.higher_is_better,
        "diagnostics": sorted(result.diagnostics),
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "profile_s": {k: round(v, 3) for k, v in sorted(result.profile.items())},
    }


def method_kinds(method_info: Dict[str, dict]) -> tuple:
    """(real methods, baselines) of a run's ``methods`` manifest entry (each method's
    ``role``); a bracket, which reads the answer key, is neither: never tested."""
    return ({m for m, info in method_info.items() if info["role"] == "method"},
            {m for m, info in method_info.items() if info["role"] == "baseline"})


def write_run(out: Path, config: dict, result, argv: Sequence[str]) -> Dict[str, Path]:
    """Write results.csv, summary.csv, curves.csv, comparisons.csv, sanity.csv,
    stability.csv and manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    seed = int(config.get("seed", 0))
    rows = sorted(result.rows, key=lambda r: (r["model"], r["method"], r["metric"], r["region"],
                                              r["sample_id"]))
    real, baselines = method_kinds(result.method_info)
    summary = summarise(rows, seed, result.higher_is_better)
    files = {
        "results": (csv_text(rows, RESULT_COLUMNS)),
        "summary": csv_text(summary, SUMMARY_COLUMNS),
        "curves": csv_text(result.curves, CURVE_COLUMNS),
        "comparisons": csv_text(comparisons(rows, seed, real, baselines), COMPARISON_COLUMNS),
        "sanity": csv_text(result.sanity, SANITY_COLUMNS),
        "stability": csv_text(stability(summary, result.model_info, real,
                                        result.higher_is_better), STABILITY_COLUMNS),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = out / f"{name}.csv"
        write_atomic(paths[name], text)
    paths["manifest"] = out / "manifest.json"
    write_atomic(paths["manifest"], json.dumps(manifest(config, result, argv), indent=1,
                                               sort_keys=True, default=str))
    return paths


def differing_files(a: Path, b: Path, names: Sequence[str]) -> List[str]:
    """The files of ``names`` whose bytes differ between run folders ``a`` and ``b``."""
    return [n for n in names if (Path(a) / n).read_bytes() != (Path(b) / n).read_bytes()]
