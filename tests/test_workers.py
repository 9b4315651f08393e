"""``--workers N``: the units computed by N one-thread processes give the same files, byte for
byte, run after run, and the same numbers as the in-process engine (which sums with torch's
default threads, so its last bits may differ: compared to 1e-4 relative)."""
import numpy as np
import pandas as pd

from benchmark.cli import main

ARGV = ["--models", "blip-itm-tiny,difnet-itm-tiny", "--methods", "cross_attn_gradcam,random",
        "--metrics", "pointing_game,deletion_auc,sanity_mprt", "--limit", "4", "--batch-size",
        "2", "--sanity-samples", "2", "--quiet", "--no-report"]
FILES = ("results.csv", "curves.csv", "sanity.csv", "summary.csv")


def test_two_worker_processes_give_the_same_bytes_and_numbers(tmp_path):
    for name, extra in (("a", ["--workers", "2"]), ("b", ["--workers", "2"]), ("local", [])):
        assert main(ARGV + extra + ["--out", str(tmp_path / name)]) == 0
    for f in FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
        got, want = pd.read_csv(tmp_path / "a" / f), pd.read_csv(tmp_path / "local" / f)
        assert got.shape == want.shape, f
        for col in want.select_dtypes("number").columns:
            assert np.allclose(got[col], want[col], rtol=1e-4, atol=1e-6, equal_nan=True), \
                f"{f}.{col}"
