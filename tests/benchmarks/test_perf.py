"""Performance as ratios against a plain reference timed in the same run (pytest-benchmark).

Run: python -m pytest tests/benchmarks -m benchmark --benchmark-enable -s
Each test times ours and the reference interleaved (median of rounds) and records the ratio in
the benchmark's extra_info; the thresholds are the ones the suite promises.
"""
import statistics
import time

import pytest
import torch

import methods
from benchmark import models
from benchmark.models.protocol import TextBatch
from metrics.perturbation import _affected, blur, match_curve, step_counts
from tests.lavis_offline import build_lavis_itm

pytestmark = pytest.mark.benchmark
QUESTIONS = ["what colour is the square?", "is there a red circle?", "how many circles are there?",
             "what shape is the blue object?"] * 2


def _interleaved(fns, rounds=7, warmup=1):
    times = [[] for _ in fns]
    for r in range(rounds + warmup):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            if r >= warmup:
                times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def test_cross_attn_gradcam_vs_lavis_compute_gradcam(benchmark):
    from lavis.models.blip_models.blip_image_text_matching import compute_gradcam

    model = build_lavis_itm()  # 24×24 grid, 12 heads, block 7
    images = torch.randn(8, 3, 96, 96)
    adapter = models.wrap(model)
    tok = model.tokenizer(QUESTIONS, padding="longest", return_tensors="pt")
    ours = lambda: methods.get("cross_attn_gradcam")(adapter, images, QUESTIONS, block=7)  # noqa
    lavis = lambda: compute_gradcam(model, images, QUESTIONS, tok, block_num=7)  # noqa
    t_ours, t_lavis = _interleaved([ours, lavis])
    model.text_encoder.encoder.layer[7].crossattention.self.save_attention = False
    benchmark.extra_info["ratio_vs_lavis"] = t_ours / t_lavis
    benchmark.pedantic(ours, rounds=3, iterations=1)
    print(f"cross_attn_gradcam / LAVIS compute_gradcam = {t_ours / t_lavis:.3f}")
    assert t_ours / t_lavis <= 1.1


@pytest.mark.parametrize("name", ["blip-itm-tiny@init", "difnet-itm-tiny@init"])
@pytest.mark.parametrize("method", ["cross_attn_gradcam", "fused_gradcam", "rollout",
                                    "integrated_gradients", "chefer_relevance"])
def test_method_time_per_batch(benchmark, name, method):
    model = models.load(name)
    images = torch.randn(8, 3, 96, 96)
    classes = model.side_input_classes("segmentation")
    model = model.given(segmentation=None if classes is None else torch.rand(8, 144, classes))
    benchmark.pedantic(lambda: methods.get(method)(model, images, QUESTIONS), rounds=3,
                       iterations=1)


def test_integrated_gradients_vs_plain_forward_backward(benchmark):
    model = models.load("blip-itm-tiny@init")
    images = torch.randn(8, 3, 96, 96)
    steps = 32
    text = model.tokenize(QUESTIONS).repeat(steps)

    def plain():  # n_steps forward+backward passes of the same batch, batched like captum
        x = images.repeat(steps, 1, 1, 1).requires_grad_(True)
        p = model.match_probability(x, TextBatch(text.input_ids, text.attention_mask))
        torch.autograd.grad(p.sum(), x)

    ours = lambda: methods.get("integrated_gradients")(model, images, QUESTIONS, n_steps=steps)  # noqa
    t_ours, t_plain = _interleaved([ours, plain], rounds=5)
    benchmark.extra_info["ratio_vs_plain"] = t_ours / t_plain
    benchmark.pedantic(ours, rounds=2, iterations=1)
    print(f"integrated_gradients / {steps} plain forward+backward = {t_ours / t_plain:.3f}")
    assert t_ours / t_plain <= 1.2


def test_deletion_insertion_vs_plain_loops(benchmark):
    model = models.load("blip-itm-tiny@init")
    images = torch.randn(8, 3, 96, 96)
    maps = torch.rand(8, 12, 12)
    dele, ins = __import__("metrics").get("deletion_auc"), __import__("metrics").get("insertion_auc")
    ours = lambda: (dele(model, images, QUESTIONS, maps), ins(model, images, QUESTIONS, maps))  # noqa
    counts = step_counts(144, 16)
    aff = _affected(maps, counts, model.grid, images.shape[-2:])[:, :, None]
    perturbed = torch.cat([torch.where(aff, torch.zeros_like(images)[:, None], images[:, None]),
                           torch.where(aff, images[:, None], blur(images)[:, None])], 1)

    def per_step():  # one forward per step per sample
        with torch.no_grad():
            for b in range(8):
                for k in range(perturbed.shape[1]):
                    model.match_probability(perturbed[b, k:k + 1], QUESTIONS[b:b + 1])

    batched = lambda: match_curve(model, images, QUESTIONS, perturbed)  # noqa
    t_ours, t_loop, t_batched = _interleaved([ours, per_step, batched], rounds=3)
    benchmark.extra_info.update(speedup_vs_loop=t_loop / t_ours, overhead_vs_batched=t_ours / t_batched)
    benchmark.pedantic(ours, rounds=2, iterations=1)
    print(f"deletion+insertion: {t_loop / t_ours:.2f}x faster than per-step loop; "
          f"{t_ours / t_batched:.3f}x a plain batched forward of the same images")
    assert t_loop / t_ours >= 3.0
    assert t_ours / t_batched <= 1.15
