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
from benchmark.models.tensors import TextBatch
from metrics._ties import record_ids, tie_break
from metrics.perturbation import affected_patches, blur, step_counts, to_pixels
from tests.fixtures.lavis_offline import build_lavis_itm

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


@pytest.mark.ratio_check
def test_cross_attn_gradcam_vs_lavis_compute_gradcam(benchmark, ratio):
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
    ratio("cross_attn_gradcam / LAVIS compute_gradcam", t_ours / t_lavis, 1.1)


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


@pytest.mark.ratio_check
def test_integrated_gradients_vs_plain_captum_and_plain_passes(benchmark, ratio):
    from captum.attr import IntegratedGradients

    from methods.integrated_gradients import ig_baseline

    model = models.load("blip-itm-tiny@init")
    images = torch.randn(8, 3, 96, 96)
    steps = 32
    text = model.tokenize(QUESTIONS)

    def logit(x, ids, mask):
        return model.itm_logits(x, TextBatch(ids, mask))[:, 1]

    def captum_plain():  # what a user would write: captum's IG on the logit, same baseline
        return IntegratedGradients(logit).attribute(
            images, baselines=ig_baseline(images, "blur"), n_steps=steps,
            additional_forward_args=(text.input_ids, text.attention_mask),
            method="riemann_middle", return_convergence_delta=True)

    repeated = model.tokenize(QUESTIONS).repeat(steps)

    def passes():  # the model's own cost: n_steps forward+backward passes of the batch
        x = images.repeat(steps, 1, 1, 1).requires_grad_(True)
        torch.autograd.grad(logit(x, repeated.input_ids, repeated.attention_mask).sum(), x)

    # one fixed 32-step integral (no doubling), with its completeness check and pooling
    ours = lambda: methods.get("integrated_gradients")(model, images, QUESTIONS, n_steps=steps,  # noqa
                                                       max_steps=steps)
    # fewer rounds where only the ratio is printed (the default session)
    t_ours, t_captum, t_passes = _interleaved([ours, captum_plain, passes],
                                              rounds=3 if benchmark.disabled else 5)
    benchmark.extra_info.update(ratio_vs_captum=t_ours / t_captum, ratio_vs_passes=t_ours / t_passes)
    benchmark.pedantic(ours, rounds=2, iterations=1)
    ratio("integrated_gradients / captum IG", t_ours / t_captum, 1.1)
    ratio(f"integrated_gradients / {steps} plain forward+backward passes", t_ours / t_passes)


@pytest.mark.ratio_check
def test_deletion_insertion_vs_plain_loops(benchmark, ratio):
    model = models.load("blip-itm-tiny@init")
    images = torch.randn(8, 3, 96, 96)
    maps = torch.rand(8, 12, 12)
    dele, ins = __import__("metrics").get("deletion_auc"), __import__("metrics").get("insertion_auc")
    ours = lambda: (dele(model, images, QUESTIONS, maps), ins(model, images, QUESTIONS, maps))  # noqa
    counts = step_counts(144, 16)
    perm = tie_break(record_ids((), 8), 144, 0)  # the metric's tie order for rows without ids
    aff = to_pixels(affected_patches(maps, counts, perm), model.grid, images.shape[-2:])[:, :, None]
    perturbed = torch.cat([torch.where(aff, torch.zeros_like(images)[:, None], images[:, None]),
                           torch.where(aff, images[:, None], blur(images)[:, None])], 1)

    def per_step():  # one forward per step per sample
        with torch.no_grad():
            for b in range(8):
                for k in range(perturbed.shape[1]):
                    model.match_probability(perturbed[b, k:k + 1], QUESTIONS[b:b + 1])

    def batched():  # what a user would write: every perturbed image in chunks of 256, the
        # question repeated beside each, one no-grad forward per chunk
        flat = perturbed.reshape(-1, *perturbed.shape[2:])
        questions = [q for q in QUESTIONS for _ in range(perturbed.shape[1])]
        with torch.no_grad():
            return torch.cat([model.match_probability(flat[s:s + 256], questions[s:s + 256])
                              for s in range(0, len(flat), 256)])

    t_ours, t_loop, t_batched = _interleaved([ours, per_step, batched], rounds=3)
    benchmark.extra_info.update(speedup_vs_loop=t_loop / t_ours, overhead_vs_batched=t_ours / t_batched)
    benchmark.pedantic(ours, rounds=2, iterations=1)
    ratio("deletion+insertion / plain batched forwards", t_ours / t_batched, 1.15)
    ratio("deletion+insertion / one forward per step", t_ours / t_loop, 1 / 3)
