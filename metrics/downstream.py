"""Downstream VQA accuracy when the answerer reads only heatmap-selected patches (PNP-VQA's use)."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch

from benchmark.models.protocol import VLModel
from benchmark.models.tensors import chunked
from benchmark.core.options import Option, at_least
from metrics import register
from metrics._ties import patch_order, ranks, record_ids, tie_break
from metrics.base import CurveScores, ModelMetric
from metrics.curves import auc
from metrics.perturbation import Substrate

#: PNP-VQA captions K = 20 of 576 patches (3.5%).
PNP_FRACTION = 20 / 576
#: The grids of the fraction of patches the answerer reads (keep: the top r; drop: the bottom r,
#: i.e. the top 1 − r removed), shared by keep and drop. ``linear`` is Chefer et al.'s 10%
#: steps (drop removes 0, 10, …, 90%; keep removes the least relevant 0 … 90%); ``log`` (the
#: default) runs from PNP-VQA's budget to the whole image in equal ratios, so every doubling of
#: the budget weighs the same: objects span many patches, so from about 20% on even random
#: patches show what a question needs, and a linear grid spends most of its points there.
GRIDS = {"log": np.round(np.geomspace(PNP_FRACTION, 1.0, 10), 4),
         "linear": np.round(np.linspace(0.1, 1.0, 10), 2)}
MODES = ("tokens", "pixels")
#: rows per pass of the masked reads (within the model's ``max_batch_images``)
CHUNK_IMAGES = 256


def _answers_with_patches(model: VLModel, images: torch.Tensor, questions: Sequence[str],
                          keep: torch.Tensor, mode: str = "tokens",
                          substrate: Substrate = torch.zeros_like,
                          absent: Optional[Dict[str, torch.Tensor]] = None,
                          tokens: Optional[torch.Tensor] = None) -> list:
    """Predicted answers when sample b reads only the patches where ``keep[b, k]`` is True.

    ``keep`` is (B, K, N); the image CLS slot is never read (PNP-VQA's captioner sees only the
    gathered patches). ``mode="tokens"`` masks the answerer's cross-attention to the kept patch
    tokens of the full image (PNP-VQA's own use; dropped patches still reach the kept tokens
    through the ViT's self-attention); ``"pixels"`` also replaces the dropped patches in the
    image by the deletion substrate before encoding, so nothing of them leaks (and the side
    inputs of ``absent`` read their absent value there, :meth:`VLModel.removing`). ``tokens``:
    the images' visual tokens when already computed (``tokens`` mode). A model that writes its
    answer (``VLModel.writes_answers``) answers by greedy decoding, reading only the kept
    visual tokens in ``tokens`` mode. Returns K lists of B answers, in (B, K) order flattened
    sample-major.
    """
    if mode not in MODES:
        raise ValueError(f"unknown VQA mode {mode!r}; use one of {', '.join(MODES)}")
    b, k, n = keep.shape
    size = model.images_per_forward(CHUNK_IMAGES)
    atts = torch.cat([torch.zeros(b * k, 1, dtype=torch.long, device=keep.device),
                      keep.reshape(b * k, n).long()], dim=1)
    with torch.no_grad():
        if mode == "tokens":
            x = images.repeat_interleave(k, 0) if model.writes_answers else None
            view = model.for_batch(b).expanded(k)
            if tokens is None and not model.writes_answers:
                tokens = chunked(lambda s, e: model.select(slice(s, e)).visual_tokens(
                    images[s:e]), b, size)
            tokens = None if tokens is None else tokens.repeat_interleave(k, 0)
        else:
            x, view = _kept_pixels(model, images, keep, substrate, absent)
            if not model.writes_answers:
                tokens = chunked(lambda s, e: view.select(slice(s, e)).visual_tokens(x[s:e]),
                                 b * k, size)
        if model.writes_answers:
            asked = [q for q in questions for _ in range(k)]
            return [a for s in range(0, b * k, size) for a in view.select(slice(s, s + size))
                    .greedy_texts(x[s:s + size], asked[s:s + size], atts[s:s + size])]
        text, atts = model.tokenize(questions).repeat(k), atts.to(tokens.device)
        idx = chunked(lambda s, e: model.answer_head(
            model.text_hidden(tokens[s:e], text[s:e], atts[s:e])[:, 0]).argmax(-1),
            b * k, size).tolist()
    return [model.answers[i] for i in idx]


def _kept_pixels(model: VLModel, images: torch.Tensor, keep: torch.Tensor,
                 substrate: Substrate, absent: Optional[Dict[str, torch.Tensor]]):
    """(B·K, C, H, W) images showing only their kept patches (the substrate elsewhere), and the
    model's view for them."""
    b, k, n = keep.shape
    gh, gw = model.grid
    ph, pw = images.shape[-2] // gh, images.shape[-1] // gw
    shown = keep.reshape(b, k, gh, gw).repeat_interleave(ph, 2).repeat_interleave(pw, 3)
    x = torch.where(shown[:, :, None], images[:, None],
                    substrate(images)[:, None]).reshape(b * k, *images.shape[1:])
    return x, model.for_batch(b).expanded(k).removing(~keep.reshape(b * k, n), absent)


def _scores(preds: list, records: Sequence, k: int, scorer: Callable) -> np.ndarray:
    return np.array([[scorer(preds[b * k + j], records[b].answers) for j in range(k)]
                     for b in range(len(records))], dtype=np.float64)


class _PatchSubsetVQA(ModelMetric):
    needs_answers = True
    reads_generated = True
    keep_top = True
    shared = ("tokens",)
    grid = Option("grid", str, "log", "the fractions of patches read: log (ten in equal ratios "
                  "from PNP-VQA's 20/576 to 1) or linear (Chefer et al.'s 10% steps)",
                  tuple(GRIDS))

    def __call__(self, model, images, questions, maps, records, scorer: Callable = None,
                 seed: int = 0, vqa_mode: str = "tokens",
                 substrate: Substrate = torch.zeros_like,
                 absent: Optional[Dict[str, torch.Tensor]] = None,
                 tokens: Optional[torch.Tensor] = None, **_) -> CurveScores:
        fractions = GRIDS[self.grid]
        n = model.grid[0] * model.grid[1]
        # the patch order is bookkeeping: on the CPU, wherever the maps were computed
        maps = maps.detach().cpu()
        rank = ranks(patch_order(maps, tie_break(record_ids(records, len(maps)), n, seed)))
        counts = torch.tensor([max(1, int(round(f * n))) for f in fractions])
        if self.keep_top:
            keep = rank[:, None, :] < counts[None, :, None]  # (B, K, N): the top r
        else:
            keep = rank[:, None, :] >= n - counts[None, :, None]  # the bottom r
        preds = _answers_with_patches(model, images, questions, keep.to(images.device),
                                      vqa_mode, substrate, absent, tokens)
        curves = _scores(preds, records, len(fractions), scorer)
        return CurveScores(np.array([auc(c) for c in curves]), np.asarray(fractions), curves)


@register("vqa_keep_auc")
class VQAKeepAUC(_PatchSubsetVQA):
    """Accuracy when only the top fraction r of patches (most relevant first, at least one) is
    read, for r on the ``grid`` option's fractions (:data:`GRIDS`: ``log`` by default,
    ``linear`` = Chefer et al.'s); normalised AUC over the grid's points. Higher is better
    (Chefer et al.'s negative perturbation, seen from the kept side). Ties follow the sample's seeded permutation
    (:mod:`metrics._ties`); a non-finite map is not scored (counted by the runner)."""


@register("vqa_drop_auc")
class VQADropAUC(_PatchSubsetVQA):
    """Accuracy when only the bottom fraction r is read, i.e. the top 1 − r removed first, on the
    same grid as ``vqa_keep_auc`` (x = the fraction read); normalised AUC. Lower is better
    (Chefer et al.'s positive perturbation)."""

    higher_is_better = False
    keep_top = False


def pnp_draws(maps: torch.Tensor, num_patches: int, repeats: int, seed: int) -> torch.Tensor:
    """(B, repeats, N) kept-patch masks: ``num_patches`` indices per draw, sampled without
    replacement with probability ∝ the map's non-negative part, from a generator seeded with
    ``seed``. A tiny floor keeps an all-zero map drawable (then uniform)."""
    b = maps.shape[0]
    # drawn on the CPU with a CPU generator: the same draws whatever device made the maps
    probs = maps.detach().cpu().reshape(b, -1).clamp(min=0).double() + 1e-12
    g = torch.Generator().manual_seed(int(seed))
    keep = torch.zeros(b, repeats, probs.shape[1], dtype=torch.bool)
    for r in range(repeats):
        idx = torch.multinomial(probs, num_patches, replacement=False, generator=g)
        keep[:, r].scatter_(1, idx, True)
    return keep


@register("vqa_pnp_sample")
class VQAPnPSample(ModelMetric):
    """PNP-VQA-style selection: ``num_patches`` patch indices drawn without replacement with
    probability ∝ the (non-negative part of the) map, ``repeats`` times with a fixed seed; the
    value is the mean accuracy over the draws. ``num_patches`` defaults to PNP-VQA's 20 of 576
    patches scaled to the grid (:data:`PNP_FRACTION`). Higher is better."""

    needs_answers = True
    reads_generated = True
    shared = ("tokens",)
    num_patches = Option("num_patches", int, None, "patches per draw (default: PNP-VQA's 20 of "
                         "576, scaled to the grid)", validate=at_least(1))
    repeats = Option("repeats", int, 5, "draws per question (the value is their mean accuracy)",
                     validate=at_least(1))

    def __call__(self, model, images, questions, maps, records, scorer: Callable = None,
                 seed: int = 0,
                 vqa_mode: str = "tokens", substrate: Substrate = torch.zeros_like,
                 absent: Optional[Dict[str, torch.Tensor]] = None,
                 tokens: Optional[torch.Tensor] = None, **_) -> CurveScores:
        n = model.grid[0] * model.grid[1]
        m = self.num_patches or max(1, round(PNP_FRACTION * n))
        keep = pnp_draws(maps, m, self.repeats, seed)
        preds = _answers_with_patches(model, images, questions, keep.to(images.device),
                                      vqa_mode, substrate, absent, tokens)
        return CurveScores(_scores(preds, records, self.repeats, scorer).mean(1))
