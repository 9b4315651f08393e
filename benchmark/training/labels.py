"""What the synthetic scenes teach: the sample pool, per-patch targets, evidence patches,
negative questions, word-level targets, and the segmentation stream a fused model is fed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from benchmark.models.protocol import VLModel
from benchmark.models.tiny import TinyConfig, Vocabulary
from datasets.segmentation_stream import class_histogram
from datasets import synthetic as syn
from datasets.scene_questions import referents_exist

#: the generator's words, as the tiny models' heads read them (recorded with each checkpoint)
VOCABULARY = Vocabulary.from_record(syn.vocabulary())


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


def negatives(pool: Pool, idx: Sequence[int], rng: np.random.Generator, p_hard: float) -> List[str]:
    out = []
    for i in idx:
        hard = pool.negatives[i]
        if hard is not None and rng.random() < p_hard:
            out.append(hard)
            continue
        for _ in range(8):  # another sample's question with no referent in this image
            j = int(rng.integers(len(pool.questions)))
            if not referents_exist(pool.objects[i], pool.programs[j]):
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


def segmentation_for(pool: Pool, idx, source: str, rng: np.random.Generator) -> Optional[torch.Tensor]:
    """The segmentation stream for a batch: exact maps, none, or another image's (shuffled)."""
    if source == "none":
        return None
    if source == "shuffled":
        idx = rng.integers(len(pool.questions), size=len(idx))
    return pool.segmentation[idx]


def fed(adapter: VLModel, seg: Optional[torch.Tensor]) -> VLModel:
    """The model given the pool's segmentation stream when it reads one (the baseline does not)."""
    return adapter.given(segmentation=seg) if "segmentation" in adapter.side_inputs else adapter
