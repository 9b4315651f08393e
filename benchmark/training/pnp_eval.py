"""Held-out evaluation of the embedded PNP-VQA, and the captioner's own passages: what the
answerer reads at test time, precomputed for training and evaluation."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np
import torch

from benchmark.training.pnp_data import ScenePool, caption, draw_patches, passages

#: the patch counts of pnp_vqa_accuracy's curve on the 12×12 grid (¼, ½, 1, 2 × 5 of 144)
CURVE_PATCHES = (1, 2, 5, 10)


def captioner_passages(pipe, pool: ScenePool, n: int, tcfg,
                       seed: int) -> Dict[int, List[str]]:
    """Scene → the passages the pipeline's captioner writes for it from uniform draws of k ∈
    the curve's patch counts (one k per scene), as at test time: :meth:`PnpVqa.answers`'
    captions (batched, rounds to the cap, cycled), for the first ``n`` scenes."""
    from benchmark.models.pnp_vqa_pipeline import cycled, sample_seed

    rng = np.random.default_rng(seed)
    out: Dict[int, List[str]] = {}
    for start in range(0, n, 64):
        idx = list(range(start, min(n, start + 64)))
        k = int(rng.choice(CURVE_PATCHES))
        x = pipe.preprocessing.normalise(pool.images[idx])
        probs = torch.ones(len(idx), pool.patch_objects.shape[1])
        caps = pipe.batched_captions(x, probs, k, tcfg.num_captions,
                                     [sample_seed(seed, str(i)) for i in idx])
        out.update({i: cycled(c, tcfg.num_captions) for i, c in zip(idx, caps)})
    return out


def caption_accuracy(pipe, pool: ScenePool, n: int, seed: int) -> float:
    """Share of held-out patch draws whose sampled caption (the pipeline's decoding) equals
    the scene-description caption, over ``n`` scenes × the curve's patch counts."""
    rng = np.random.default_rng(seed)
    hits = total = 0
    for i in range(n):
        under = pool.patch_objects[i].numpy()
        x = pipe.preprocessing.normalise(pool.images[i:i + 1])
        for k in CURVE_PATCHES:
            d = np.sort(draw_patches(rng, under, k))
            probs = torch.zeros(1, len(under))
            probs[0, d] = 1.0
            got = pipe.captions(x, probs, k, 1, seed + i)
            hits += bool(got) and got[0].strip() == caption(pool.objects[i], under[d])
            total += 1
    return hits / total


def answer_accuracy(pipe, pool: ScenePool, n: int, seed: int, tcfg,
                    written: Optional[Dict[int, List[str]]] = None) -> float:
    """Exact-match accuracy of the pipeline's answerer on ``n`` held-out scenes: from the
    captioner's own passages ``written`` when given (the whole pipeline on uniform maps), else
    from scene-description passages of uniform draws."""
    rng = np.random.default_rng(seed)
    hits = 0
    for i in range(n):
        caps = written[i] if written is not None else passages(
            rng, pool.objects[i], pool.patch_objects[i].numpy(), tcfg.num_captions,
            int(rng.choice(CURVE_PATCHES)), tcfg.rounds)
        hits += pipe.answer(pool.questions[i], caps) == pool.answers[i]
    return hits / n


def evaluate_pipeline(pipe, test: ScenePool, tcfg) -> Dict[str, float]:
    """Held-out accuracies on ``eval_scenes`` test scenes: the captioner's greedy captions
    against the scene's, the answerer on scene-description passages of uniform draws, and the
    whole pipeline (the captioner's passages of uniform draws, then the answerer)."""
    n = tcfg.eval_scenes
    written = captioner_passages(pipe, test, n, tcfg, seed=3)
    return {"caption_accuracy": caption_accuracy(pipe, test, n, 1),
            "answer_accuracy": answer_accuracy(pipe, test, n, 2, tcfg),
            "pipeline_accuracy": answer_accuracy(pipe, test, n, 2, tcfg, written)}
