"""Training and held-out evaluation of the embedded tiny models on the synthetic data.

Recipe (what made a ~1.3M-parameter model learn hard-negative ITM and VQA on 2 CPU cores):

* a convolutional patch stem (see :mod:`benchmark.models.tiny`);
* dense auxiliary supervision: per patch, the colour / shape / size of the object under it
  (cross-entropy, weight ``aux_weight``), so the visual tokens carry the attributes questions use;
* ITM with a negative curriculum: each positive question is paired with a negative that is, with
  probability ``p_hard`` (ramped from ``hard_start`` to 1 over the first ``hard_ramp`` of training),
  a hard negative (one colour/shape word swapped so no object matches) and otherwise another
  sample's question that has no referent in this image;
* the VQA answer head trained on the same forward pass (cross-entropy over the answer set);
* word grounding from the scene maps (weight ``ground_weight``): in every cross-attention layer
  that feeds the next one, each colour or shape word's head-mean attention should fall on the
  patches of objects with that attribute (−log of that attention mass) — word-level, so how the
  words of a question combine is left to the model;
* partial views (probability ``partial_prob`` per sample): the text encoder reads only a random
  subset of the patches (a fraction drawn from [``partial_min``, 1], image CLS hidden), as
  PNP-VQA's answerer reads only the patches a heatmap selects. Those rows train the answer head
  and the word grounding on what is visible; ITM and the word-attribute loss, whose labels may
  depend on hidden patches, use the full-view rows only;
* AdamW, linear warm-up then cosine decay, gradient clipping; fixed seeds, a fixed number of steps;
* a second, short stage of evidence views (``evidence_steps`` at ``evidence_lr``): with probability
  ``evidence_prob`` a sample reads every patch its answer depends on (the generator's evidence
  mask) plus a random share of the others, so the answer is unchanged by construction. Random
  partial views alone teach the answerer to read context from any patches; with softmax
  cross-attention it then counts by the share of attended patches, and answers count questions
  wrongly from the few patches a heatmap selects. This stage starts from the first stage's
  weights with its own seed and optimiser, so it can also be run on a saved first stage.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.models.protocol import VLModel
from benchmark.models.tiny import PATCH_GROUPS, TinyConfig
from methods._capture import capture
from benchmark.segmentation import class_histogram
from datasets import synthetic as syn


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


@dataclass
class Pool:
    """Pre-generated training samples in arrays (generation is kept out of the step loop)."""

    images: torch.Tensor  # (N, H, W, 3) uint8
    patch_targets: torch.Tensor  # (N, gh*gw, 3) long
    segmentation: torch.Tensor  # (N, gh*gw, C) float: per-patch class histogram
    questions: List[str]
    negatives: List[Optional[str]]
    answers: torch.Tensor  # (N,)
    itm_labels: torch.Tensor  # (N,)
    objects: List[list]
    programs: List[dict]
    families: List[str]
    evidence: torch.Tensor  # (N, gh*gw) bool: patches touching an object the answer depends on


def patch_targets(sample: syn.Sample, patch: int) -> np.ndarray:
    """(gh·gw, 3) colour/shape/size class of the object covering ≥ 25% of each patch (0 = none)."""
    h = sample.instance_map.shape[0] // patch
    blocks = sample.instance_map.reshape(h, patch, h, patch).transpose(0, 2, 1, 3).reshape(h * h, -1)
    out = np.zeros((h * h, 3), np.int64)
    colours, sizes = list(syn.COLOURS), list(syn.SIZES)
    for i, blk in enumerate(blocks):
        counts = np.bincount(blk, minlength=len(sample.objects) + 1)
        counts[0] = 0
        k = int(counts.argmax())
        if counts[k] * 4 >= blk.size:
            o = sample.objects[k - 1]
            out[i] = (colours.index(o.colour) + 1, syn.SHAPES.index(o.shape) + 1,
                      sizes.index(o.size) + 1)
    return out


def evidence_patches(mask: np.ndarray, patch: int) -> np.ndarray:
    """(gh·gw,) bool: the patches holding at least one pixel of ``mask``."""
    h = mask.shape[0] // patch
    return mask.reshape(h, patch, h, patch).any(axis=(1, 3)).reshape(-1)


def segmentation_histogram(semantic_map: np.ndarray, grid: int) -> np.ndarray:
    """(grid², C) per-patch class histogram of a synthetic semantic map."""
    return class_histogram(semantic_map, grid, len(syn.SEMANTIC_CLASSES))


def _make(args) -> tuple:
    seed, split, index, size, patch = args
    s = syn.generate(seed, split, index, image_size=size)
    return (s.image, patch_targets(s, patch), segmentation_histogram(s.semantic_map, size // patch),
            s.question, s.itm_negative, syn.ANSWERS.index(s.answer), s.itm_label, s.objects,
            s.program, s.family, evidence_patches(s.evidence_mask, patch))


def build_pool(split: str, n: int, cfg: TinyConfig, seed: int, workers: int = 2,
               progress: bool = True) -> Pool:
    """Generate ``n`` samples of ``split`` (in ``workers`` processes; order is deterministic)."""
    from tqdm import tqdm

    jobs = [(seed, split, i, cfg.image_size, cfg.patch_size) for i in range(n)]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            rows = list(tqdm(pool.imap(_make, jobs, chunksize=64), total=n, disable=not progress,
                             desc=f"generating {split}", unit="scene"))
    else:
        rows = [_make(j) for j in tqdm(jobs, disable=not progress, desc=f"generating {split}")]
    cols = list(zip(*rows))
    return Pool(torch.from_numpy(np.stack(cols[0])), torch.from_numpy(np.stack(cols[1])),
                torch.from_numpy(np.stack(cols[2])), list(cols[3]), list(cols[4]),
                torch.tensor(cols[5]), torch.tensor(cols[6]), list(cols[7]), list(cols[8]),
                list(cols[9]), torch.from_numpy(np.stack(cols[10])))


def _negatives(pool: Pool, idx: Sequence[int], rng: np.random.Generator, p_hard: float) -> List[str]:
    out = []
    for i in idx:
        hard = pool.negatives[i]
        if hard is not None and rng.random() < p_hard:
            out.append(hard)
            continue
        for _ in range(8):  # another sample's question with no referent in this image
            j = int(rng.integers(len(pool.questions)))
            if not syn._referents_exist(pool.objects[i], pool.programs[j]):
                out.append(pool.questions[j])
                break
        else:
            out.append(hard if hard is not None else pool.questions[i])
    return out


def _word_attributes() -> Dict[str, tuple]:
    """vocabulary word → ("colour", name) or ("shape", name) for the attribute words."""
    out = {c: ("colour", c) for c in syn.COLOURS}
    out.update({s: ("shape", s) for s in syn.SHAPES})
    out.update({s + "s": ("shape", s) for s in syn.SHAPES})
    return out


TOKEN_AUX = len(syn.SHAPES) + len(syn.COLOURS) + 4  # shapes/colours present, count 0..3+


def token_targets(tokenizer, input_ids: torch.Tensor, objects_per_row: Sequence[list]):
    """Per text token: for a colour word, which shapes have that colour in the image (multi-hot)
    and how many objects have it; for a shape word, which colours it comes in and how many.
    Returns (multi_hot (B, L, 7), count (B, L), row_mask (B, L) bool: which tokens are attribute
    words)."""
    vocab = {tokenizer.convert_tokens_to_ids(w): a for w, a in _word_attributes().items()}
    b, length = input_ids.shape
    multi = torch.zeros(b, length, len(syn.SHAPES) + len(syn.COLOURS))
    count = torch.zeros(b, length, dtype=torch.long)
    mask = torch.zeros(b, length, dtype=torch.bool)
    colours = list(syn.COLOURS)
    for i, objs in enumerate(objects_per_row):
        for j, tid in enumerate(input_ids[i].tolist()):
            attr = vocab.get(tid)
            if attr is None:
                continue
            kind, value = attr
            hits = [o for o in objs if getattr(o, kind) == value]
            for o in hits:
                if kind == "colour":
                    multi[i, j, syn.SHAPES.index(o.shape)] = 1
                else:
                    multi[i, j, len(syn.SHAPES) + colours.index(o.colour)] = 1
            count[i, j] = min(len(hits), 3)
            mask[i, j] = True
    return multi, count, mask


def _token_aux_loss(model, hidden_all: torch.Tensor, targets) -> torch.Tensor:
    multi, count, mask = targets
    if not mask.any():
        return hidden_all.sum() * 0
    logits = model.token_head(hidden_all[mask])
    k = multi.shape[-1]
    return (F.binary_cross_entropy_with_logits(logits[:, :k], multi[mask])
            + F.cross_entropy(logits[:, k:], count[mask])) / 2


def word_patch_sets(tokenizer, input_ids: torch.Tensor, patch_classes: torch.Tensor):
    """Per text token, the patches showing its attribute: (B, L, N) bool, and (B, L) validity.

    ``patch_classes`` is (B, N, 3) as :func:`patch_targets`; a colour word selects the patches
    whose object has that colour, a shape word (singular or plural) those of that shape. Tokens
    that are not attribute words, or whose attribute is not in the image, are not valid.
    """
    group = torch.full((len(tokenizer),), -1, dtype=torch.long)
    value = torch.zeros(len(tokenizer), dtype=torch.long)
    colours = list(syn.COLOURS)
    for word, (kind, name) in _word_attributes().items():
        tid = tokenizer.convert_tokens_to_ids(word)
        group[tid] = 0 if kind == "colour" else 1
        value[tid] = (colours.index(name) if kind == "colour" else syn.SHAPES.index(name)) + 1
    g, v = group[input_ids], value[input_ids]  # (B, L)
    cls = patch_classes[:, None, :, :2].expand(-1, g.shape[1], -1, -1)  # (B, L, N, 2)
    picked = cls.gather(-1, g.clamp(min=0)[..., None, None].expand(-1, -1, cls.shape[2], 1))[..., 0]
    sets = (picked == v[..., None]) & (g >= 0)[..., None]
    return sets, sets.any(-1)


def _grounding_loss(attentions: Sequence[torch.Tensor], sets: torch.Tensor,
                    valid: torch.Tensor) -> torch.Tensor:
    """Mean over layers and valid word tokens of −log(head-mean attention mass on their patches)."""
    if not valid.any():
        return attentions[0].sum() * 0
    loss = 0.0
    for attn in attentions:  # (B, H, L, 1 + N)
        mass = (attn.mean(1)[..., 1:] * sets).sum(-1)  # (B, L)
        loss = loss + -torch.log(mass[valid] + 1e-6).mean()
    return loss / len(attentions)


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


def _aux_loss(model, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = model.patch_head(tokens[:, 1:])  # (B, N, sum(groups))
    loss, start = 0.0, 0
    for g, (name, n) in enumerate(PATCH_GROUPS.items()):
        loss = loss + F.cross_entropy(logits[..., start:start + n].reshape(-1, n),
                                      targets[..., g].reshape(-1))
        start += n
    return loss / len(PATCH_GROUPS)


def _schedule(peak: float, warmup: int, steps: int):
    """Linear warm-up to ``peak``, then cosine decay to 5% of it at ``steps``."""
    def lr_at(step: int) -> float:
        if step < warmup:
            return peak * (step + 1) / warmup
        t = (step - warmup) / max(1, steps - warmup)
        return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))
    return lr_at


def _optimiser(model, tcfg: TrainConfig) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": tcfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=tcfg.lr)


def _fed(adapter: VLModel, seg: Optional[torch.Tensor]) -> VLModel:
    """The model given the pool's segmentation stream when it reads one (the baseline does not)."""
    return adapter.given(segmentation=seg) if "segmentation" in adapter.side_inputs else adapter


def _losses(adapter: VLModel, pool: Pool, idx: np.ndarray, rng: np.random.Generator,
            p_hard: float, tcfg: TrainConfig, seg_source: str, evidence_prob: float) -> dict:
    """The recipe's losses on one batch (``loss`` is their weighted sum)."""
    model = adapter.module
    images = adapter.preprocessing.normalise(pool.images[idx])
    seg = _segmentation_for(pool, idx, seg_source, rng)
    tokens = _fed(adapter, seg).visual_tokens(images)
    questions = [pool.questions[i] for i in idx]
    text = adapter.tokenize(questions + _negatives(pool, idx, rng, p_hard))
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
    out["itm"] = F.cross_entropy(model.itm_head(hidden[full]), itm_target[full])
    out["vqa"] = F.cross_entropy(model.vqa_head(hidden[:b]), pool.answers[idx])
    out["aux"] = _aux_loss(model, tokens, pool.patch_targets[idx])
    out["loss"] = out["itm"] + out["vqa"] + tcfg.aux_weight * out["aux"] + \
        tcfg.token_aux_weight * out["tok"]
    if tcfg.ground_weight:
        pt = pool.patch_targets[idx]
        sets, _ = word_patch_sets(adapter.tokenizer, text.input_ids.cpu(), torch.cat([pt, pt]))
        sets = sets & atts[:, None, 1:].bool()  # only what the row can see
        out["ground"] = _grounding_loss([rec.last(k) for k in layers], sets, sets.any(-1))
        out["loss"] = out["loss"] + tcfg.ground_weight * out["ground"]
    return out


def _run_stage(adapter: VLModel, pool: Pool, tcfg: TrainConfig, stage: int, progress: bool,
               seg_source: str) -> Dict[str, float]:
    """Stage 1 (the main schedule) or stage 2 (evidence views), each with its own seed and
    optimiser, so that stage 2 gives the same weights whether or not stage 1 ran in this process."""
    from tqdm import tqdm

    main = stage == 1
    steps = tcfg.steps if main else tcfg.evidence_steps
    lr_at = _schedule(tcfg.lr, tcfg.warmup, steps) if main else \
        _schedule(tcfg.evidence_lr, max(1, steps // 12), steps)
    torch.manual_seed(tcfg.seed + stage - 1)
    rng = np.random.default_rng(tcfg.seed if main else [tcfg.seed, stage])
    model = adapter.module
    model.train()
    opt = _optimiser(model, tcfg)
    order = rng.permutation(len(pool.questions))
    cursor, running = 0, defaultdict(float)
    bar = tqdm(range(steps), disable=not progress, unit="step",
               desc=f"training {adapter.name}" + ("" if main else " (evidence views)"
                                                   if tcfg.evidence_prob else " (stage 2)"))
    for step in bar:
        if cursor + tcfg.batch_size > len(order):
            order, cursor = rng.permutation(len(pool.questions)), 0
        idx = order[cursor:cursor + tcfg.batch_size]
        cursor += tcfg.batch_size
        p_hard = min(1.0, tcfg.hard_start + (1 - tcfg.hard_start) * step / max(1, tcfg.hard_ramp * steps)) \
            if main else 1.0
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        losses = _losses(adapter, pool, idx, rng, p_hard, tcfg, seg_source,
                         0.0 if main else tcfg.evidence_prob)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        for k, v in losses.items():
            if k != "loss":
                running[k] = 0.98 * running[k] + 0.02 * v.item() if step else v.item()
        if step % 20 == 0:
            bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()}, refresh=False)
    model.eval()
    return dict(running)


def train(adapter: VLModel, cfg: TinyConfig, tcfg: TrainConfig, progress: bool = True,
          pool: Optional[Pool] = None, seg_source: str = "exact",
          stages: Sequence[int] = (1, 2)) -> Dict[str, float]:
    """Train ``adapter.module`` in place (``stages=(2,)`` continues from first-stage weights);
    returns timing and the final running losses of the last stage."""
    pool = pool or build_pool("train", tcfg.pool_size, cfg, tcfg.data_seed, progress=progress)
    t0, running = time.time(), {}
    for stage in stages:
        if stage == 1 or tcfg.evidence_steps:
            running = _run_stage(adapter, pool, tcfg, stage, progress, seg_source)
    return {"train_seconds": time.time() - t0, **{f"final_{k}_loss": v for k, v in running.items()}}


def _segmentation_for(pool: Pool, idx, source: str, rng: np.random.Generator) -> Optional[torch.Tensor]:
    """The segmentation stream for a batch: exact maps, none, or another image's (shuffled)."""
    if source == "none":
        return None
    if source == "shuffled":
        idx = rng.integers(len(pool.questions), size=len(idx))
    return pool.segmentation[idx]


@torch.no_grad()
def evaluate(adapter: VLModel, pool: Pool, batch_size: int = 128, seg_source: str = "exact",
             seed: int = 0) -> Dict[str, object]:
    """Held-out ITM accuracy (positives vs hard negatives) and VQA accuracy, overall and per family."""
    adapter.eval()
    rng = np.random.default_rng(seed)
    itm_hits, vqa_hits = defaultdict(list), defaultdict(list)
    for start in range(0, len(pool.questions), batch_size):
        idx = np.arange(start, min(start + batch_size, len(pool.questions)))
        images = adapter.preprocessing.normalise(pool.images[idx])
        view = _fed(adapter, _segmentation_for(pool, idx, seg_source, rng))
        tokens = view.visual_tokens(images)
        qs = [pool.questions[i] for i in idx]
        hidden = adapter.text_hidden(tokens, adapter.tokenize(qs))[:, 0]
        match = adapter.match_head(hidden).argmax(-1)
        pred = adapter.answer_head(hidden).argmax(-1)
        neg_rows = [k for k, i in enumerate(idx) if pool.negatives[i] is not None]
        neg_match = torch.zeros(len(idx), dtype=torch.long)
        if neg_rows:
            nh = adapter.text_hidden(tokens[neg_rows],
                                     adapter.tokenize([pool.negatives[idx[k]] for k in neg_rows]))[:, 0]
            neg_match[neg_rows] = adapter.match_head(nh).argmax(-1)
        for k, i in enumerate(idx):
            fam = pool.families[i]
            itm_hits[fam].append(int(match[k]) == int(pool.itm_labels[i]))
            if pool.negatives[i] is not None:
                itm_hits[fam].append(int(neg_match[k]) == 0)
            vqa_hits[fam].append(int(pred[k]) == int(pool.answers[i]))

    def summarise(hits):
        allh = [h for v in hits.values() for h in v]
        return float(np.mean(allh)), {f: float(np.mean(v)) for f, v in sorted(hits.items())}

    itm, itm_f = summarise(itm_hits)
    vqa, vqa_f = summarise(vqa_hits)
    return {"itm_accuracy": itm, "vqa_accuracy": vqa, "itm_by_family": itm_f,
            "vqa_by_family": vqa_f, "n_questions": len(pool.questions)}


def train_config_dict(tcfg: TrainConfig) -> dict:
    return asdict(tcfg)
