"""The training recipe: its configuration, the partial and evidence views, and the losses of
one batch (see :mod:`benchmark.training` for the recipe in words)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.models.protocol import VLModel
from methods._capture import capture
from benchmark.training.labels import (VOCABULARY, Pool, fed, negatives, segmentation_for,
                                       token_targets, word_patch_sets)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run (hashed with the model config for the cache key)."""

    steps: int = 4000
    batch_size: int = 48
    pool_size: int = 40000  # distinct training scenes, generated once, revisited across epochs
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup: int = 300
    aux_weight: float = 0.5
    token_aux_weight: float = 0.5
    hard_start: float = 0.3
    hard_ramp: float = 0.4
    ground_weight: float = 0.5
    partial_prob: float = 0.3
    partial_min: float = 0.1
    evidence_steps: int = 600
    evidence_lr: float = 5e-4
    evidence_prob: float = 0.8
    seed: int = 0
    data_seed: int = 0


def partial_views(b: int, n_patches: int, rng: np.random.Generator, prob: float,
                  min_keep: float) -> torch.Tensor:
    """(b, 1 + n_patches) cross-attention mask: full view, or with probability ``prob`` a random
    subset of patches (fraction uniform in [``min_keep``, 1]) without the image CLS token."""
    atts = torch.ones(b, 1 + n_patches, dtype=torch.long)
    for i in np.flatnonzero(rng.random(b) < prob):
        k = max(1, int(round(rng.uniform(min_keep, 1.0) * n_patches)))
        atts[i] = 0
        atts[i, 1 + torch.from_numpy(rng.permutation(n_patches)[:k])] = 1
    return atts


def evidence_views(atts: torch.Tensor, evidence: torch.Tensor, rng: np.random.Generator,
                   prob: float) -> torch.Tensor:
    """With probability ``prob`` per row, replace the view in ``atts`` (b, 1 + N) by the evidence
    patches plus a random share s² (s uniform in [0, 1]) of the other patches, image CLS hidden.
    Rows without evidence (e.g. a 'no' answer to an exist question) keep their view."""
    atts = atts.clone()
    for i in np.flatnonzero(rng.random(len(atts)) < prob):
        ev = evidence[i]
        if not ev.any():
            continue
        rest = torch.from_numpy(rng.random(ev.numel()) < rng.random() ** 2)
        atts[i, 0] = 0
        atts[i, 1:] = (ev | rest).long()
    return atts


def _token_aux_loss(model, hidden_all: torch.Tensor, targets) -> torch.Tensor:
    multi, count, mask = targets
    if not mask.any():
        return hidden_all.sum() * 0
    logits = model.token_head(hidden_all[mask])
    k = multi.shape[-1]
    return (F.binary_cross_entropy_with_logits(logits[:, :k], multi[mask])
            + F.cross_entropy(logits[:, k:], count[mask])) / 2


def grounding_loss(attentions: Sequence[torch.Tensor], sets: torch.Tensor,
                    valid: torch.Tensor) -> torch.Tensor:
    """Mean over layers and valid word tokens of −log(head-mean attention mass on their patches)."""
    if not valid.any():
        return attentions[0].sum() * 0
    loss = 0.0
    for attn in attentions:  # (B, H, L, 1 + N)
        mass = (attn.mean(1)[..., 1:] * sets).sum(-1)  # (B, L)
        loss = loss + -torch.log(mass[valid] + 1e-6).mean()
    return loss / len(attentions)


def patch_attribute_loss(model, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``model.patch_head`` on the ViT's patch tokens (``tokens``: CLS
    first) against each patch's colour / shape / size class (``targets``: (B, N, 3))."""
    logits = model.patch_head(tokens[:, 1:])  # (B, N, sum(groups))
    loss, start = 0.0, 0
    groups = VOCABULARY.patch_groups
    for g, (name, n) in enumerate(groups.items()):
        loss = loss + F.cross_entropy(logits[..., start:start + n].reshape(-1, n),
                                      targets[..., g].reshape(-1))
        start += n
    return loss / len(groups)


def batch_losses(adapter: VLModel, pool: Pool, idx: np.ndarray, rng: np.random.Generator,
            p_hard: float, tcfg: TrainConfig, seg_source: str, evidence_prob: float) -> dict:
    """The recipe's losses on one batch (``loss`` is their weighted sum)."""
    model = adapter.module
    images = adapter.preprocessing.normalise(pool.images[idx])
    seg = segmentation_for(pool, idx, seg_source, rng)
    tokens = fed(adapter, seg).visual_tokens(images)
    questions = [pool.questions[i] for i in idx]
    text = adapter.tokenize(questions + negatives(pool, idx, rng, p_hard))
    b = len(idx)
    atts = partial_views(b, tokens.shape[1] - 1, rng, tcfg.partial_prob, tcfg.partial_min)
    if evidence_prob:
        atts = evidence_views(atts, pool.evidence[idx], rng, evidence_prob)
    atts = torch.cat([atts, atts])
    full = atts[:, 0].bool()  # rows that see the whole image (CLS included)
    sites = adapter.attention_sites("text_cross")[:-1]
    layers = {str(k): site for k, site in enumerate(sites)}
    with capture(outputs=layers if tcfg.ground_weight else {}) as rec:
        hidden_all = adapter.text_hidden(torch.cat([tokens, tokens]), text, atts)
    hidden = hidden_all[:, 0]
    objs = [pool.objects[i] for i in idx]
    multi, count, words = token_targets(adapter.tokenizer, text.input_ids.cpu(), objs + objs)
    out = {"tok": _token_aux_loss(model, hidden_all, (multi, count, words & full[:, None]))}
    itm_target = torch.cat([pool.itm_labels[idx], torch.zeros(b, dtype=torch.long)])
    out["itm"] = F.cross_entropy(adapter.match_head(hidden[full]), itm_target[full])
    out["vqa"] = F.cross_entropy(adapter.answer_head(hidden[:b]), pool.answers[idx])
    out["aux"] = patch_attribute_loss(model, tokens, pool.patch_targets[idx])
    out["loss"] = out["itm"] + out["vqa"] + tcfg.aux_weight * out["aux"] + \
        tcfg.token_aux_weight * out["tok"]
    if tcfg.ground_weight:
        pt = pool.patch_targets[idx]
        sets, _ = word_patch_sets(adapter.tokenizer, text.input_ids.cpu(), torch.cat([pt, pt]))
        sets = sets & atts[:, None, 1:].bool()  # only what the row can see
        out["ground"] = grounding_loss([rec.last(k) for k in layers], sets, sets.any(-1))
        out["loss"] = out["loss"] + tcfg.ground_weight * out["ground"]
    return out
