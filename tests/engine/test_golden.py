"""Every number of a small fixed run equals the numbers recorded in ``tests/fixtures/data/golden/``.

A refactor must not move a number; an intended change re-records them
(``VQA_XAI_BENCH_RECORD_GOLDEN=1 pytest tests/engine/test_golden.py``) and says why in its commit.
Values are compared to 1e-3 relative (not bytes: the same-seed test checks bytes within one
machine), because the CSVs' sixth significant digit moves with the number of BLAS threads
(measured: 14 of 2,024 result rows differ between 1 and 2 threads, by at most 1e-4 relative, and a
sanity mean by 3e-5 through one swapped near-tie), while any real change is far larger.
"""
import gzip
import os
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.cli.main import main

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "data" / "golden"
CSVS = ("results.csv", "curves.csv", "sanity.csv", "summary.csv", "comparisons.csv")
#: a fixed list, so that adding a plugin never re-records these numbers
#: (``tests/engine/test_every_plugin_runs.py`` runs every registered one): the eleven methods and every
#: metric of the synthetic data (PNP-VQA's downstream through the embedded pipeline) but the two
#: cascades (their cost grows with the model's depth; their machinery is shared with ``emprt``,
#: which is here), on both trained models and the full plan (every method and metric on every
#: question: the default plan's counts decide only which questions run, never a number)
METHODS = ["center", "chefer_relevance", "counterfactual_oracle", "cross_attn_gradcam",
           "evidence_oracle", "fused_gradcam", "gradient_x_input", "integrated_gradients",
           "oracle", "random", "rollout"]
METRICS = ["counterfactual_pointing", "deletion_auc", "emprt", "insertion_auc",
           "object_faithfulness", "object_faithfulness_outside_target", "pnp_vqa_accuracy",
           "pointing_game", "pointing_game_above_chance", "question_swap", "random_logit",
           "relevance_mass", "relevance_rank", "vqa_drop_auc", "vqa_keep_auc", "vqa_pnp_sample"]
ARGV = ["--models", "blip-itm-tiny,difnet-itm-tiny", "--methods", ",".join(METHODS),
        "--metrics", ",".join(METRICS), "--limit", "4", "--batch-size", "2", "--steps", "4",
        "--sanity-samples", "4", "--full", "--quiet", "--no-report"]


#: quantities that count exact float equalities or histogram bins, so that a last-bit difference
#: between CPUs (measured: the same code on two machines, 67 of 2,496 values apart by a median
#: 5e-6) moves them by a whole step: a map's share of tied patches (one tie in 144 patches is
#: 0.014) and eMPRT's entropy change (a value crossing a bin edge); compared to one such step
DISCRETE = {"tie_fraction": 0.03, "emprt": 0.01}


def _tolerance(frame: pd.DataFrame) -> np.ndarray:
    """Per row: the relative and absolute tolerance (1e-3 unless the row is a discrete one)."""
    tol = np.full(len(frame), 1e-3)
    for key in ("metric", "test"):
        if key in frame.columns:
            for quantity, step in DISCRETE.items():
                tol[(frame[key] == quantity).to_numpy()] = step
    return tol


def _same(name: str, got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns), name
    assert len(got) == len(want), f"{name}: {len(got)} rows, recorded {len(want)}"
    tol = _tolerance(want)
    for col in want.columns:
        a, b = got[col], want[col]
        if pd.api.types.is_numeric_dtype(b) and pd.api.types.is_numeric_dtype(a):
            x, y = a.to_numpy(float), b.to_numpy(float)
            atol = np.where(tol > 1e-3, tol, 1e-5)
            with np.errstate(invalid="ignore"):
                ok = (np.abs(x - y) <= atol + tol * np.abs(y)) | (np.isnan(x) & np.isnan(y))
            assert ok.all(), f"{name}.{col}: first change at row {int(np.argmin(ok))}"
        else:
            assert (a.fillna("").astype(str) == b.fillna("").astype(str)).all(), f"{name}.{col}"


def test_a_fixed_run_reproduces_the_recorded_numbers(tmp_path):
    out = tmp_path / "run"
    assert main(ARGV + ["--out", str(out)]) == 0
    if os.environ.get("VQA_XAI_BENCH_RECORD_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in CSVS:
            with open(GOLDEN / f"{name}.gz", "wb") as f, \
                    gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as z:
                z.write((out / name).read_bytes())
    for name in CSVS:
        with gzip.open(GOLDEN / f"{name}.gz") as f:
            want = pd.read_csv(f, keep_default_na=True)
        _same(name, pd.read_csv(out / name), want)
