"""Seconds per sample and peak memory per method for ``blip-itm-base`` / ``blip-itm-large``
loaded by the suite's own loader from random-weight files in LAVIS's layout (nothing is
downloaded): each (model, method) is one CLI run in a fresh process, so each peak is that
method's own (the peak resident set of a process only grows).

Per (model, method): ``maps s/sample`` (the method's explain time per question, from the run's
profile), ``peak MiB`` (the process's peak resident set, model weights included) and the model's
``images per forward`` (from ``--memory-budget-gb``). A last run per model measures the metrics
that run the model (deletion and insertion, ``--steps`` points; the sanity cascade on one
question) on ``cross_attn_gradcam`` maps. Integrated Gradients runs a fixed ``--ig-steps``
integral (a run integrates until the completeness gap is ≤ 5%, up to 4096 steps).

Usage: ``python tools/pretrained_cost.py [--models base,large] [--samples 2] [--out FILE]``
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmark.models.pretrained import CHECKPOINTS  # noqa: E402
from tests.fixtures.real_layout import bert_vocab, lavis_checkpoint  # noqa: E402

METHODS = ("cross_attn_gradcam", "fused_gradcam", "rollout", "gradient_x_input",
           "chefer_relevance", "integrated_gradients", "random", "center")
CHILD = ("import resource, sys\nfrom benchmark.cli.main import main\ncode = main(sys.argv[1:])\n"
         "print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\nsys.exit(code)")


def run(args: List[str]) -> tuple:
    """(manifest, peak MiB) of one CLI run in a fresh interpreter."""
    r = subprocess.run([sys.executable, "-W", "ignore", "-c", CHILD, *args], cwd=ROOT,
                       capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"run failed ({' '.join(args)}): {r.stderr.strip().splitlines()[-1]}")
    peak = int(r.stdout.rsplit("PEAK_KIB", 1)[1].split()[0]) / 1024
    out = Path(args[args.index("--out") + 1])
    return json.loads((out / "manifest.json").read_text()), peak


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="base,large")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="methods to time (default: all but the ground-truth brackets); "
                        "'none' times only the metrics")
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--ig-steps", type=int, default=32)
    p.add_argument("--steps", type=int, default=16, help="deletion/insertion steps")
    p.add_argument("--memory-budget-gb", default="8")
    p.add_argument("--out", default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    lines = ["| model | method / metrics | s per sample | peak MiB | images per forward |",
             "| --- | --- | ---: | ---: | ---: |"]
    print("\n".join(lines), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = bert_vocab(Path(tmp) / "tokenizer" / "vocab.txt").parent
        for kind in args.models.split(","):
            name = f"blip-itm-{kind}"
            vit_type, filename = CHECKPOINTS[name]
            weights = Path(tmp) / "weights"
            lavis_checkpoint(weights / filename, vit_type, tokenizer)
            common = ["--models", name, "--weights-dir", str(weights), "--tokenizer-dir",
                      str(tokenizer), "--limit", str(args.samples), "--quiet",
                      "--memory-budget-gb", args.memory_budget_gb]
            ig = ["--method-option", f"integrated_gradients.n_steps={args.ig_steps}",
                  "--method-option", f"integrated_gradients.max_steps={args.ig_steps}"]
            chosen = [m for m in args.methods.split(",") if m in METHODS]
            jobs = [(m, ["--methods", m, "--metrics", "pointing_game,relevance_rank"]
                     + (ig if m == "integrated_gradients" else [])) for m in chosen]
            jobs.append(("metrics",
                         ["--methods", "cross_attn_gradcam", "--metrics",
                          "deletion_auc,insertion_auc,sanity_mprt", "--sanity-samples", "1",
                          "--steps", str(args.steps)]))
            for i, (what, extra) in enumerate(jobs):
                out = Path(tmp) / f"run-{kind}-{i}"
                manifest, peak = run(common + extra + ["--out", str(out)])
                prof = manifest["profile_s"]
                per_forward = manifest["models"][name]["images_per_forward"]
                if what in METHODS:
                    parts = {what: prof.get(f"{what}/explain", 0.0) / args.samples}
                else:  # per metric; the sanity cascade per sanity question (one here)
                    parts = {k.split("/", 1)[1]: v / (1 if "sanity" in k else args.samples)
                             for k, v in prof.items()
                             if not k.endswith(("/explain", "counterfactual metrics"))}
                for part, seconds in parts.items():
                    line = f"| {name} | {part} | {seconds:.2f} | {peak:.0f} | {per_forward} |"
                    lines.append(line)
                    print(line, flush=True)
            (weights / filename).unlink()
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
