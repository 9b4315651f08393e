"""``--workers N``: the units computed by N one-thread processes give the same files, byte for
byte, run after run, and the same numbers as the in-process engine (which sums with torch's
default threads, so its last bits may differ: compared to 1e-4 relative)."""
import numpy as np
import pandas as pd

from benchmark.cli.main import main

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


def _children(pid: int) -> list:
    import os

    out = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(fields[1]) == pid:
            out.append(int(entry))
    return out


def test_a_killed_worker_stops_the_run_with_one_line_and_it_resumes(tmp_path):
    """A worker killed mid-run (the OOM killer, a user) ends the run with one line and exit 2,
    keeps every unit already written, and the same command finishes the run with the bytes of
    an uninterrupted one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "VQA_XAI_BENCH_WORKERS": "2"}
    cmd = [sys.executable, "-m", "benchmark"] + ARGV + ["--out", str(tmp_path / "run")]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    cache = tmp_path / "run" / "cache"
    while proc.poll() is None and not list(cache.glob("*/*/batch-*.json")):
        time.sleep(0.2)
    for child in _children(proc.pid):
        if "resource_tracker" not in open(f"/proc/{child}/cmdline").read():
            os.kill(child, signal.SIGKILL)
    err = proc.communicate(timeout=300)[1].strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and err[0].startswith("error: a worker"), err
    kept = list(cache.glob("*/*/batch-*.json"))
    assert kept
    assert subprocess.run(cmd, env=env).returncode == 0
    assert main(ARGV + ["--workers", "2", "--out", str(tmp_path / "whole")]) == 0
    for f in FILES:
        assert (tmp_path / "run" / f).read_bytes() == (tmp_path / "whole" / f).read_bytes(), f
