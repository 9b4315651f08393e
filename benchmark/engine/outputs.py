"""The run folder: tidy CSVs and the manifest, each written atomically (temp file, then rename)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Sequence

import metrics
from benchmark.core.atomic import write_atomic
from benchmark.core.beside import beside
from benchmark.engine.agreement import COLUMNS as AGREEMENT_COLUMNS
from benchmark.engine.agreement import agreement
from benchmark.engine.comparisons import COLUMNS as COMPARISON_COLUMNS
from benchmark.engine.comparisons import tests_of, values_by_key
from benchmark.engine.meta_eval import COLUMNS as META_COLUMNS
from benchmark.engine.meta_eval import meta_table
from benchmark.engine.provenance import manifest
from benchmark.engine.stability import COLUMNS as STABILITY_COLUMNS
from benchmark.engine.stability import stability
from benchmark.engine.tables import (CURVE_COLUMNS, MODALITY_COLUMNS, RESULT_COLUMNS,
                                     SANITY_COLUMNS, SUMMARY_COLUMNS, TOKEN_COLUMNS, csv_text,
                                     summarise)


#: from this many rows on, the paired tests run in a second process
PARALLEL_TESTS = 200_000


def method_kinds(method_info: Dict[str, dict]) -> tuple:
    """(real methods, baselines, exploratory methods) of a run's ``methods`` manifest entry
    (each method's ``role``); a bracket, which reads the answer key, is none: never tested."""
    return tuple({m for m, info in method_info.items() if info["role"] == role}
                 for role in ("method", "baseline", "exploratory"))


def write_run(out: Path, config: dict, result, argv: Sequence[str]) -> Dict[str, Path]:
    """Write results.csv, summary.csv, curves.csv, comparisons.csv, sanity.csv,
    stability.csv, agreement.csv, tokens.csv, modality.csv, meta.csv and manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    seed = int(config.get("seed", 0))
    rows = sorted(result.rows, key=lambda r: (r["model"], r["method"], r["metric"], r["region"],
                                              r["sample_id"]))
    real, baselines, exploratory = method_kinds(result.method_info)
    with beside(len(rows) >= PARALLEL_TESTS) as pool:
        # the paired tests beside the summary and the results' text, on a second core
        tests = pool.submit(tests_of, values_by_key(rows), seed, real, baselines,
                            exploratory)
        summary = summarise(rows, seed, result.higher_is_better)
        files = _files(rows, summary, result, seed, real)
        files["comparisons"] = csv_text(tests.result(), COMPARISON_COLUMNS)
    paths = {}
    for name, text in files.items():
        paths[name] = out / f"{name}.csv"
        write_atomic(paths[name], text)
    paths["manifest"] = out / "manifest.json"
    write_atomic(paths["manifest"], json.dumps(manifest(config, result, argv), indent=1,
                                               sort_keys=True, default=str))
    return paths


def _files(rows: List[dict], summary: List[dict], result, seed: int, real: set) -> Dict[str, str]:
    """The text of every CSV but comparisons.csv."""
    return {
        "results": (csv_text(rows, RESULT_COLUMNS)),
        "summary": csv_text(summary, SUMMARY_COLUMNS),
        "curves": csv_text(result.curves, CURVE_COLUMNS),
        "sanity": csv_text(result.sanity, SANITY_COLUMNS),
        "stability": csv_text(stability(summary, result.model_info, real,
                                        result.higher_is_better), STABILITY_COLUMNS),
        "agreement": csv_text(agreement(summary, real, result.higher_is_better,
                                        set(metrics.available())), AGREEMENT_COLUMNS),
        "tokens": csv_text(sorted(result.tokens, key=lambda r: (
            r["model"], r["method"], r["sample_id"], r["position"])), TOKEN_COLUMNS),
        "modality": csv_text(sorted(result.modality, key=lambda r: (
            r["model"], r["metric"], r["sample_id"])), MODALITY_COLUMNS),
        "meta": csv_text(meta_table(rows, result.meta, real, result.higher_is_better),
                         META_COLUMNS),
    }


def differing_files(a: Path, b: Path, names: Sequence[str]) -> List[str]:
    """The files of ``names`` whose bytes differ between run folders ``a`` and ``b``."""
    return [n for n in names if (Path(a) / n).read_bytes() != (Path(b) / n).read_bytes()]
