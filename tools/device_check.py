"""The device check: one table of throughput and peak memory per model × method and model ×
metric, and the agreement of every map and metric between the CPU and the device.

Models: the shipped tiny pair (``blip-itm-tiny``, ``difnet-itm-tiny``) and LAVIS's BLIP ITM
architecture at 384 px, base (ViT-B/16) and large (ViT-L/16), built from LAVIS's own model
configs with random weights (nothing is downloaded; the tokenizer is the suite's offline one,
whose ids fit BERT's embedding). Inputs: test questions of the synthetic scenes, resized by each
model's own preprocessing. Integrated Gradients runs a fixed ``--ig-steps`` integral here (the
cost per step is what is measured; a run integrates until it converges).

Columns: ``samples/s`` (maps, or metric values, per second; the device synchronised), ``peak MiB``
(``torch.cuda.max_memory_allocated`` over that call on CUDA; the process's peak resident memory
so far on the CPU, which only grows), and, on CUDA for the tiny models, ``max |Δ| vs CPU``: the
largest difference between the CPU's and the device's maps (normalised by the map's largest
magnitude) or metric values on the same inputs; it passes when below ``--tolerance``.

Usage: ``bash tools/device_check.sh [--device auto|cpu|cuda] [--budget-s S] [--out FILE]``.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import torch

import methods
import metrics
from benchmark import models
from benchmark.engine.batch_inputs import fed
from benchmark.cli.main import resolve_device
from benchmark.engine.config import RunConfig
from benchmark.models.memory import bound
from benchmark.models.pretrained import build_blip_itm
from benchmark.models.tiny import _tokenizer
from benchmark.core.errors import NotApplicable

TINY = ("blip-itm-tiny", "difnet-itm-tiny")
#: LAVIS ViT type and samples per call; the images per forward (IG's path points, a curve's
#: images) come from --memory-budget-gb, as in a run
BIG = {"blip-itm-base@random": ("base", 4), "blip-itm-large@random": ("large", 2)}
#: methods that read what a real run hands them (masks, the model's own object effects)
SKIP_METHODS = ("counterfactual_oracle",)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable, device: str, n: int) -> tuple:
    """(result, samples/s, peak MiB) of ``fn()`` on ``n`` samples."""
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    dt = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out, n / dt, peak


def _inputs(model, n: int):
    """(records, images, questions, answer scorer) of the first ``n`` synthetic test questions."""
    import datasets
    from metrics.vqa import exact_match, vqa_accuracy

    data = datasets.get("synthetic")(split="test", seed=0)
    recs = [data[i] for i in range(n)]
    return (recs, model.preprocess([r.image for r in recs]), [r.question for r in recs],
            exact_match if data.exact_match else vqa_accuracy)


def _maps(method, model, images, questions, recs) -> torch.Tensor:
    return method.explain(model, images, questions, seed=0,
                          masks=[r.target_mask for r in recs]).maps


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().cpu(), b.double().cpu()
    scale = max(a.abs().max().item(), 1e-12)
    return (a - b).abs().max().item() / scale


def _measured(name: str, what: str, run: Callable, run_cpu: Optional[Callable], device: str,
              n: int, tolerance: float) -> tuple:
    """(row, output) of one measurement: rate and peak on the device and, with ``run_cpu``, the
    largest relative difference to the CPU's output on the same inputs."""
    out, rate, peak = timed(run, device, n)
    row = {"model": name, "what": what, "rate": rate, "peak": peak}
    if run_cpu is not None:
        row["diff"] = _diff(torch.as_tensor(out), torch.as_tensor(run_cpu()))
        row["ok"] = row["diff"] <= tolerance
    return row, out


def _on_device(name: str, model, cpu_model, device: str, n: int) -> tuple:
    """The inputs of :func:`_inputs` with each model fed the run's side inputs (a fused model's
    segmentation stream) on its own device, the device's model warmed up."""
    recs, images, questions, scorer = _inputs(model, n)
    cfg = RunConfig(models=[name], methods=[], metrics=[])
    model = fed(model.to(device), recs, recs, cfg)
    cpu_model = None if cpu_model is None else fed(cpu_model, recs, recs, cfg)
    images = images.to(device)
    with torch.no_grad():  # lazy initialisation and kernel selection are not timed
        model.select(slice(0, 1)).match_probability(images[:1], questions[:1])
    return recs, images, questions, scorer, model, cpu_model


def check_model(name: str, model, device: str, n: int, ig_steps: int, tolerance: float,
                cpu_model=None, deadline: float = float("inf"),
                show: Callable[[dict], None] = lambda row: None) -> List[dict]:
    """Rows for one model: every method, then every model metric on a Grad-CAM map, each passed
    to ``show`` as it is measured. The model's ``max_batch_images`` bounds the images per
    forward (IG's path points, the perturbed images of a curve), as in a run."""
    rows: List[dict] = []

    def note(what: str, text: str) -> None:
        rows.append({"model": name, "what": what, "note": text})
        show(rows[-1])

    recs, images, questions, scorer, model, cpu_model = _on_device(name, model, cpu_model,
                                                                   device, n)
    gradcam: Optional[torch.Tensor] = None
    for m in methods.REGISTRY.resolve("all"):
        if m in SKIP_METHODS:
            continue
        if time.perf_counter() > deadline:
            note(m, "skipped: over the time budget")
            continue
        method = methods.get(m)
        if m == "integrated_gradients":
            method = method.with_options(n_steps=ig_steps, max_steps=ig_steps)
        on_cpu = None if cpu_model is None else (
            lambda: _maps(method, cpu_model, images.cpu(), questions, recs))
        try:
            row, maps = _measured(name, m, lambda: _maps(method, model, images, questions, recs),
                                  on_cpu, device, n, tolerance)
        except NotApplicable as e:
            note(m, f"not applicable: {e}")
            continue
        rows.append(row)
        show(row)
        if m == "cross_attn_gradcam":
            gradcam = maps.cpu()  # the metrics read CPU maps, as the engine's
    for m in metrics.REGISTRY.resolve("all"):
        metric = metrics.get(m)
        if metric.kind != "model" or gradcam is None:
            continue
        why = metric.applicable(model)
        if why or time.perf_counter() > deadline:
            note(m, f"not applicable: {why}" if why else "skipped: over the time budget")
            continue

        def score(mod, imgs, metric=metric):
            return metric(mod, imgs, questions, gradcam, recs, scorer=scorer).values

        on_cpu = None if cpu_model is None else (lambda: score(cpu_model, images.cpu()))
        try:
            row, _ = _measured(name, m, lambda: score(model, images), on_cpu, device, n,
                               tolerance)
        except NotApplicable as e:  # a metric that needs what the check does not pass
            note(m, f"not applicable: {e}")
            continue
        rows.append(row)
        show(row)
    return rows


HEADER = ["| model | method / metric | samples/s | peak MiB | max rel. diff vs CPU | note |",
          "| --- | --- | ---: | ---: | ---: | --- |"]


def line(r: dict) -> str:
    """One row of the Markdown table."""
    diff = f"{r['diff']:.2e} {'ok' if r['ok'] else 'FAIL'}" if "diff" in r else "—"
    rate = f"{r['rate']:.3g}" if "rate" in r else "—"
    peak = f"{r['peak']:.0f}" if "peak" in r else "—"
    return f"| {r['model']} | {r['what']} | {rate} | {peak} | {diff} | {r.get('note', '')} |"


def table(rows: List[dict], device: str, tolerance: float) -> str:
    """The rows as one Markdown table."""
    return "\n".join([f"device: {device}; max relative difference vs CPU passes at ≤ "
                      f"{tolerance:g}", "", *HEADER, *map(line, rows)])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--models", default="tiny,base,large",
                   help="comma-separated: tiny, base, large (default: all three)")
    p.add_argument("--ig-steps", type=int, default=32, help="IG's fixed integral here (32)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest relative difference of a map or metric to the CPU's (1e-3)")
    p.add_argument("--budget-s", type=float, default=420,
                   help="stop starting new rows after this many seconds (420: the check fits in "
                        "8 minutes with model loading)")
    p.add_argument("--samples", type=int, default=None,
                   help="samples per call (default: 8 for tiny, 4 for base, 2 for large)")
    p.add_argument("--memory-budget-gb", type=float, default=8.0,
                   help="what one forward and backward of a big model may hold (8, as a run)")
    p.add_argument("--out", default=None, help="also write the table to this file")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    deadline = time.perf_counter() + args.budget_s
    wanted = set(args.models.split(","))
    rows: List[dict] = []
    print("\n".join(HEADER), file=sys.stderr, flush=True)  # each row as it is measured

    def show(row: dict) -> None:
        print(line(row), file=sys.stderr, flush=True)

    if "tiny" in wanted:
        for name in TINY:
            cpu_model = models.load(name) if device != "cpu" else None
            rows += check_model(name, models.load(name), device, args.samples or 8, args.ig_steps,
                                args.tolerance, cpu_model, deadline, show=show)
    for kind in ("base", "large"):
        if kind in wanted:
            name = f"blip-itm-{kind}@random"
            vit_type, n = BIG[name]
            model = models.wrap(build_blip_itm(vit_type, _tokenizer()), name=name).to(device)
            model = bound(model, None, args.memory_budget_gb)
            rows += check_model(name, model, device, args.samples or n, args.ig_steps,
                                args.tolerance, None, deadline, show)
    text = table(rows, device, args.tolerance)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 1 if any(r.get("ok") is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
