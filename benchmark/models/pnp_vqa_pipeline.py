"""PNP-VQA's captioner and answerer (Tiong et al., EMNLP Findings 2022; LAVIS ``PNPVQA``), driven
by the heatmap of any method: the map takes the place of ``samples["gradcams"]``.

Per question: ``num_captions`` captions, each from ``num_patches`` patch tokens of the
captioner's ViT drawn without replacement with probability ∝ the map (LAVIS ``forward_cap``:
multinomial draws, sorted, gathered; nucleus/top-k sampling from the prompt ``"a picture of "``,
a caption kept only if it is not part of one already kept); then the question and the captions go
to a UnifiedQA-v2 T5 in fusion-in-decoder mode (LAVIS ``forward_qa``, greedy). With
``cross_attn_gradcam`` maps this is PNP-VQA itself (``tests/models/test_pnp_vqa.py`` checks it against
``PNPVQA.predict_answers`` with the same seed).

Every question's answerer reads exactly ``num_captions`` passages, whatever the map: LAVIS draws
until every question has ``num_captions`` distinct captions; here at most ``max_rounds`` rounds of
``num_captions`` draws are made (a captioner that says few different things would never end),
and a question that has fewer distinct captions by then reads them cycled in the order found
until it has ``num_captions`` (where LAVIS's loop ends, which it always does for BLIP large, this
changes nothing). A map that spreads over the scene therefore cannot win by giving the answerer
more passages to read; how many of them were distinct is reported per question
(``pnp_distinct_captions``).

What differs from LAVIS, and why:
- each question's patches and captions are drawn under its own seed, from (run seed, sample
  id), so its captions do not depend on which questions share its batch; with ``batched``
  settings all questions of a batch are decoded at once, each caption sampled with the
  Gumbel-max trick from noise drawn under its own seed (the same distribution as LAVIS's
  top-k sampling, one draw per row whatever the batch);
- at most ``max_rounds`` rounds, and cycled distinct captions at the cap (above);
- a map with fewer positive patches than ``num_patches`` (where LAVIS's ``torch.multinomial``
  raises) draws the rest uniformly among the others;
- a map on another patch grid than the captioner's is resampled to it by area
  (:func:`regrid_mass`: each of the map's patches keeps its share of the probability).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from benchmark.models.tensors import Preprocessing

#: PNP-VQA's captions per question in its evaluation configs (and in ``predict_answers``: 50)
PNP_CAPTIONS = 100
#: PNP-VQA's patches per caption in its evaluation configs (of 576; ``predict_answers``: 50)
PNP_PATCHES = 20


@dataclass(frozen=True)
class CaptionSettings:
    """LAVIS ``forward_cap``'s generation settings (``predict_answers``'s defaults)."""

    max_length: int = 20
    min_length: int = 10
    top_p: float = 1.0
    top_k: int = 50
    repetition_penalty: float = 1.0
    max_rounds: int = 20  # rounds of num_captions draws before the distinct ones are cycled
    #: decode a batch's questions together, each caption sampled from its own seeded noise
    #: (Gumbel-max), instead of one question at a time from the global random stream (LAVIS)
    batched: bool = False


#: the embedded pipeline's: greedy decoding — LAVIS samples the top 50 of BERT's 30,522 words
#: (0.16% of them); the same share of the tiny captioner's 52 words is under one, and sampling
#: from all of them garbles its captions (held-out caption accuracy 0.54 against 0.89 greedy,
#: 60 scenes × 4 patch counts) — so its distinct captions come from new patch draws, as LAVIS's
#: loop draws them, for at most 3 rounds (each round costs as much as the first); batched
TINY_SETTINGS = CaptionSettings(max_length=20, min_length=5, top_k=1, max_rounds=3,
                                batched=True)


def cycled(found: Sequence[str], num_captions: int) -> List[str]:
    """Exactly ``num_captions`` passages from the distinct captions ``found``: each in the order
    found, repeated from the first when there are fewer (none: none)."""
    return [found[i % len(found)] for i in range(num_captions)] if found else []


class RowNoise:
    """A logits processor adding per-row Gumbel noise drawn in advance, after top-k filtering:
    the argmax of the result is a top-k sample of the softmax (Gumbel-max), so greedy decoding
    with it samples each row from its own seeded noise, whatever rows share the batch."""

    def __init__(self, noise: torch.Tensor, top_k: int, start: int) -> None:
        self.noise, self.top_k, self.start = noise, top_k, start  # noise: (R, steps, vocab)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if 0 < self.top_k < scores.shape[-1]:
            kth = scores.topk(self.top_k, -1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        step = input_ids.shape[1] - self.start
        return scores + self.noise[:, step, :scores.shape[-1]].to(scores)


def row_noise(seeds: Sequence[int], steps: int, vocab: int) -> torch.Tensor:
    """(R, steps, vocab) standard Gumbel noise, row r from a generator seeded with seeds[r]."""
    rows = []
    for s in seeds:
        u = torch.rand(steps, vocab, generator=torch.Generator().manual_seed(s),
                       dtype=torch.float64).clamp(min=1e-12, max=1 - 1e-12)
        rows.append(-torch.log(-torch.log(u)))
    return torch.stack(rows).float()


def _shares(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in): the share of each of ``n_in`` equal cells of [0, 1] that lies in each of
    ``n_out`` equal cells (every column sums to 1)."""
    a = torch.arange(n_in + 1, dtype=torch.float64) / n_in
    b = torch.arange(n_out + 1, dtype=torch.float64) / n_out
    overlap = torch.minimum(b[1:, None], a[None, 1:]) - torch.maximum(b[:-1, None], a[None, :-1])
    return overlap.clamp(min=0) * n_in


def regrid_mass(maps: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
    """(B, h, w) non-negative maps on another (B, *grid) patch grid, each cell's mass spread over
    the cells it overlaps in proportion to the overlap: every patch of the map keeps its share of
    the total for any ratio of the grids (nearest-neighbour would drop three of four patches of
    a 24 × 24 map read on a 12 × 12 grid, and weigh patches unequally at 16 → 24)."""
    rows, cols = _shares(maps.shape[1], grid[0]), _shares(maps.shape[2], grid[1])
    return torch.einsum("ji,bik,lk->bjl", rows, maps.double(), cols).to(maps.dtype)


@dataclass
class PnpVqa:
    """A captioner (LAVIS ``BlipCaption``) and an answerer (LAVIS ``PNPUnifiedQAv2FiD``).

    ``preprocessing`` is the captioner's (LAVIS's ``blip_image_eval`` at its image size);
    ``info`` (fingerprint, sources) goes into the run manifest.
    """

    captioner: nn.Module
    answerer: nn.Module
    name: str
    preprocessing: Preprocessing
    settings: CaptionSettings = CaptionSettings()
    info: Dict[str, object] = field(default_factory=dict)

    @property
    def grid(self) -> Tuple[int, int]:
        return tuple(int(g) for g in self.captioner.visual_encoder.patch_embed.grid_size)

    @property
    def device(self) -> torch.device:
        return next(self.captioner.parameters()).device

    def to(self, device) -> "PnpVqa":
        self.captioner.to(device)
        self.answerer.to(device)
        return self

    def patch_probabilities(self, maps: torch.Tensor, num_patches: int) -> torch.Tensor:
        """(B, N) sampling weights on the captioner's grid from (B, gh, gw) maps: the positive
        part of the map, resampled; rows with fewer than ``num_patches`` positive patches get
        the rest of their draws spread uniformly over the others."""
        maps = maps.float().clamp(min=0)
        if tuple(maps.shape[1:]) != self.grid:
            maps = regrid_mass(maps, self.grid)
        p = maps.flatten(1)
        short = (p > 0).sum(1) < num_patches
        if short.any():
            floor = p[short].sum(1, keepdim=True).clamp(min=1.0) * 1e-6
            p[short] = torch.where(p[short] > 0, p[short], floor)
        return p

    def _decode(self, encoded: torch.Tensor, draws: torch.Tensor,
                noise_seeds: Optional[Sequence[int]] = None) -> List[str]:
        """One caption per row: the captioner's decoder reading the patches ``draws`` (R, k)
        of the encoded rows ``encoded`` (R, 1 + N, D); greedy when ``top_k`` is 1, else
        sampled — from the global random stream, or with ``noise_seeds`` (one per row) by
        Gumbel-max from each row's own noise (:class:`RowNoise`)."""
        from transformers import LogitsProcessorList

        cap, s = self.captioner, self.settings
        index = (draws + 1)[:, :, None].expand(-1, -1, encoded.shape[-1])  # + 1: CLS first
        patches = torch.gather(encoded, 1, index)
        # the prompt tokenised once, not once per row (the slow tokenizer's cost grew with them)
        prompt = cap.tokenizer([cap.prompt], return_tensors="pt").input_ids.to(self.device)
        prompt[:, 0] = cap.tokenizer.bos_token_id
        ids = prompt[:, :-1].repeat(len(draws), 1)
        noise = None if noise_seeds is None or s.top_k == 1 else RowNoise(
            row_noise(noise_seeds, s.max_length, len(cap.tokenizer)), s.top_k, ids.shape[1])
        out = cap.text_decoder.generate(
            input_ids=ids, max_length=s.max_length, min_length=s.min_length,
            do_sample=s.top_k != 1 and noise is None, top_p=s.top_p, top_k=s.top_k,
            num_return_sequences=1, eos_token_id=cap.tokenizer.sep_token_id,
            pad_token_id=cap.tokenizer.pad_token_id,
            logits_processor=LogitsProcessorList([noise] if noise is not None else []),
            repetition_penalty=s.repetition_penalty, encoder_hidden_states=patches,
            encoder_attention_mask=torch.ones(patches.shape[:-1], dtype=torch.long,
                                              device=self.device))
        return [text[len(cap.prompt):] for text in decode_text(cap.tokenizer, out)]

    @staticmethod
    def _keep(found: List[str], new: Sequence[str], num_captions: int) -> None:
        """LAVIS's rule: a caption is kept when it is not part of one already kept."""
        for caption in new:
            if len(found) < num_captions and not any(caption in c for c in found):
                found.append(caption)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The captioner's ViT tokens of preprocessed images (B, 1 + N, D): what every caption
        of an image reads, computed once per image for all its curve points."""
        with torch.no_grad():
            return self.captioner.forward_encoder({"image": images})

    def captions(self, image: torch.Tensor, probs: torch.Tensor, num_patches: int,
                 num_captions: int, seed: int,
                 encoded: Optional[torch.Tensor] = None) -> List[str]:
        """Up to ``num_captions`` distinct captions of one preprocessed image (1, 3, H, W; or
        its :meth:`encode` tokens ``encoded``), each from ``num_patches`` patches drawn ∝
        ``probs`` (1, N), under ``seed`` (the global RNG is restored afterwards)."""
        encoded = self.encode(image) if encoded is None else encoded
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(seed)
            found: List[str] = []
            for _ in range(self.settings.max_rounds):
                draws = torch.cat([torch.multinomial(probs.to(self.device), num_patches)
                                   .sort(1).values for _ in range(num_captions)])
                self._keep(found, self._decode(encoded.expand(num_captions, -1, -1), draws),
                           num_captions)
                if len(found) >= num_captions:
                    break
        return found

    def batched_captions(self, images: torch.Tensor, probs: torch.Tensor, num_patches: int,
                         num_captions: int, seeds: Sequence[int],
                         encoded: Optional[torch.Tensor] = None) -> List[List[str]]:
        """:meth:`captions` of a batch of images at once: each image's draws come from its own
        seed (on a CPU generator, as :meth:`captions` draws on the CPU), each caption is decoded
        from its own seeded noise (:class:`RowNoise`; greedy at ``top_k`` 1, where a caption
        depends only on its patches), and all rows of a round are decoded together — the same
        captions as one image at a time, whatever images share the batch."""
        encoded = self.encode(images) if encoded is None else encoded
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        found: List[List[str]] = [[] for _ in seeds]
        with torch.no_grad():
            for round_ in range(self.settings.max_rounds):
                todo = [i for i, f in enumerate(found) if len(f) < num_captions]
                if not todo:
                    break
                draws = torch.cat([torch.multinomial(probs[i:i + 1].cpu(), num_patches,
                                                     generator=gens[i]).sort(1).values
                                   for i in todo for _ in range(num_captions)])
                rows = encoded[torch.tensor(todo, device=self.device)].repeat_interleave(
                    num_captions, 0)
                noise = [zlib.crc32(f"{seeds[i]}:{round_}:{j}".encode()) for i in todo
                         for j in range(num_captions)]
                texts = self._decode(rows, draws.to(self.device), noise)
                for j, i in enumerate(todo):
                    self._keep(found[i], texts[j * num_captions:(j + 1) * num_captions],
                               num_captions)
        return found

    def answer(self, question: str, captions: Sequence[str]) -> str:
        """UnifiedQA-v2 fusion-in-decoder's answer from the question and its captions (LAVIS
        ``forward_qa``: one caption per passage, greedy decoding)."""
        from lavis.models.pnp_vqa_models.pnp_vqa import PNPVQA

        shell = PNPVQA(None, self.captioner, self.answerer)
        with torch.no_grad():
            return shell.forward_qa({"text_input": [question], "captions": [list(captions)]},
                                    num_captions=len(captions))[0]

    def answers(self, images: torch.Tensor, questions: Sequence[str], maps: torch.Tensor,
                sample_ids: Sequence[str], num_patches: int, num_captions: int,
                seed: int, encoded: Optional[torch.Tensor] = None) -> Tuple[List[str], List[int]]:
        """The answer to every question, each from exactly ``num_captions`` passages (its
        distinct captions, :func:`cycled` at the cap), and how many of them were distinct; its
        captions drawn under a seed from (``seed``, sample id); ``encoded``: the images'
        :meth:`encode` tokens, when already computed."""
        encoded = self.encode(images) if encoded is None else encoded
        probs = self.patch_probabilities(maps, num_patches)
        seeds = [sample_seed(seed, sid) for sid in sample_ids]
        if self.settings.batched:
            caps = self.batched_captions(images, probs, num_patches, num_captions, seeds,
                                         encoded)
        else:
            caps = [self.captions(images[i:i + 1], probs[i:i + 1], num_patches, num_captions, s,
                                  encoded[i:i + 1]) for i, s in enumerate(seeds)]
        return [self.answer(q, cycled(c, num_captions)) if c else ""
                for q, c in zip(questions, caps)], [len(c) for c in caps]


def sample_seed(seed: int, sample_id: str) -> int:
    """The torch seed of one question's captions: (run seed, crc32 of its id)."""
    return (int(seed) & 0xFFFFFFFF) * 2 ** 32 + zlib.crc32(str(sample_id).encode())


def decode_text(tokenizer, ids: torch.Tensor) -> List[str]:
    """``tokenizer.batch_decode(ids, skip_special_tokens=True)``, the same text: the special
    ids are dropped here once, where a slow tokenizer rebuilds its list of them for every token
    (a fifth of the captioning time)."""
    special = set(tokenizer.all_special_ids)
    return tokenizer.batch_decode([[i for i in row if i not in special] for row in ids.tolist()])
