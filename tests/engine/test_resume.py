"""A run killed with SIGKILL at several points and restarted ends with the uninterrupted bytes."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
# a trained model, so that the model-based metrics (curves, their comparisons, the per-object
# effects cache) are computed, killed and resumed too
ARGS = ["--models", "blip-itm-tiny", "--methods", "random,cross_attn_gradcam,rollout",
        "--metrics", "pointing_game,deletion_auc,vqa_keep_auc,object_faithfulness,random_logit",
        "--limit", "12", "--batch-size", "2", "--quiet", "--no-report", "--steps", "4",
        "--sanity-samples", "4"]
FILES = ("results.csv", "summary.csv", "curves.csv", "comparisons.csv", "sanity.csv")


def _cmd(out):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return [sys.executable, "-m", "benchmark", *ARGS, "--out", str(out)], env


def test_sigkill_at_several_points_then_resume(tmp_path):
    cmd, env = _cmd(tmp_path / "ref")
    t0 = time.time()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    full = time.time() - t0
    out = tmp_path / "killed"
    cmd, env = _cmd(out)
    rng = np.random.default_rng(0)
    kills = 0
    for frac in sorted(rng.uniform(0.45, 0.95, size=4)):
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(frac * full)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        for f in (out / "cache").rglob("*.json") if (out / "cache").exists() else []:
            json.loads(f.read_text())  # nothing under a final name is half-written
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    print(f"SIGKILLed at {kills} points before completion")
    assert kills >= 2
    for name in FILES:
        assert (out / name).read_bytes() == (tmp_path / "ref" / name).read_bytes(), name
