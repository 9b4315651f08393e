"""index.html opened in headless Chromium: no console errors, every figure loads, the lazy gallery
thumbnails decode, nothing wider than a 1280 px window, not blank."""
import base64
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from benchmark.cli.main import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]


def test_report_in_headless_chromium(tmp_path):
    if CHROMIUM is None:
        if os.environ.get("VQA_XAI_BENCH_REQUIRE_BROWSER"):
            pytest.fail("no chromium on PATH: install Debian's chromium (.ci/run does)")
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    out = tmp_path / "run"
    assert main(["--models", "blip-itm-tiny@init", "--methods", "random,cross_attn_gradcam",
                 "--metrics", "pointing_game,deletion_auc", "--limit", "6", "--batch-size", "3",
                 "--quiet", "--steps", "4", "--out", str(out)]) == 0
    url = (out / "index.html").resolve().as_uri()
    profile = tmp_path / "profile"
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr",
                          "--v=0", "--window-size=1280,1600", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    console = [l for l in dom.stderr.splitlines() if "CONSOLE" in l]
    assert not [l for l in console if "Uncaught" in l or "error" in l.lower()], console
    m = re.search(r'data-images-loaded="(\d+)/(\d+)"', dom.stdout)
    assert m, "the page's load check did not run"
    loaded, total = map(int, m.groups())
    assert total > 0 and loaded == total  # every figure (eager)
    # the gallery's thumbnails load lazily: each is a JPEG that decodes, 2 maps + image per card
    lazy = re.search(r'data-lazy-images="(\d+)"', dom.stdout)
    thumbs = re.findall(r'<img class="thumb" loading="lazy"[^>]*src="data:image/jpeg;base64,([^"]+)"',
                        dom.stdout)
    assert lazy and int(lazy.group(1)) == len(thumbs) == 6 * 3
    for data in thumbs:
        Image.open(io.BytesIO(base64.b64decode(data))).verify()
    overflow = re.search(r'data-overflow-px="(\d+)"', dom.stdout)
    assert overflow and overflow.group(1) == "0", "the page is wider than a 1280 px window"
    assert "Which method is best on each model" in dom.stdout
    ids = re.findall(r'<h2 id="([^"]+)"', dom.stdout)
    assert ids and len(ids) == len(set(ids)), ids  # every section once
    shot = out / "screenshot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1280,1600",
                    f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01  # text and images, not blank
