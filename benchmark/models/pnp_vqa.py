"""PNP-VQA's captioner and answerer (Tiong et al., EMNLP Findings 2022; LAVIS ``PNPVQA``), driven
by the heatmap of any method: the map takes the place of ``samples["gradcams"]``.

Per question: ``num_captions`` captions, each from ``num_patches`` patch tokens of the
captioner's ViT drawn without replacement with probability ∝ the map (LAVIS ``forward_cap``:
multinomial draws, sorted, gathered; nucleus/top-k sampling from the prompt ``"a picture of "``,
a caption kept only if it is not part of one already kept); then the question and the captions go
to a UnifiedQA-v2 T5 in fusion-in-decoder mode (LAVIS ``forward_qa``, greedy). With
``cross_attn_gradcam`` maps this is PNP-VQA itself (``tests/test_pnp_vqa.py`` checks it against
``PNPVQA.predict_answers`` with the same seed).

What differs from LAVIS, and why:
- each question's patches and captions are drawn under its own seed, from (run seed, sample
  id), so its captions do not depend on which questions share its batch (greedy captions,
  which depend only on their patches, are decoded for the whole batch at once);
- LAVIS samples until every image has ``num_captions`` distinct captions, which never ends for a
  captioner that says few different things; here at most ``max_rounds`` rounds are drawn (the
  distinct captions found by then are used);
- a map with fewer positive patches than ``num_patches`` (where LAVIS's ``torch.multinomial``
  raises) draws the rest uniformly among the others;
- a map on another patch grid than the captioner's is resampled to it by area
  (:func:`regrid_mass`: each of the map's patches keeps its share of the probability).
"""
from __future__ import annotations

import functools
import hashlib
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from benchmark.errors import InputError
from benchmark.models import MissingWeights
from benchmark.models.protocol import Preprocessing, state_hash

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
    max_rounds: int = 20  # rounds of num_captions draws before settling for what was found


#: the embedded pipeline's: captions are at most 15 tokens and a tiny captioner says few
#: different things, so one round of draws (its distinct captions are used)
TINY_SETTINGS = CaptionSettings(max_length=20, min_length=5, top_k=1, max_rounds=1)


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

    def _decode(self, encoded: torch.Tensor, draws: torch.Tensor) -> List[str]:
        """One caption per row: the captioner's decoder reading the patches ``draws`` (R, k)
        of the encoded rows ``encoded`` (R, 1 + N, D); sampled unless ``top_k`` is 1."""
        cap, s = self.captioner, self.settings
        index = (draws + 1)[:, :, None].expand(-1, -1, encoded.shape[-1])  # + 1: CLS first
        patches = torch.gather(encoded, 1, index)
        prompt = cap.tokenizer([cap.prompt] * len(draws), return_tensors="pt").to(self.device)
        prompt.input_ids[:, 0] = cap.tokenizer.bos_token_id
        out = cap.text_decoder.generate(
            input_ids=prompt.input_ids[:, :-1], max_length=s.max_length,
            min_length=s.min_length, do_sample=s.top_k != 1, top_p=s.top_p, top_k=s.top_k,
            num_return_sequences=1, eos_token_id=cap.tokenizer.sep_token_id,
            pad_token_id=cap.tokenizer.pad_token_id,
            repetition_penalty=s.repetition_penalty, encoder_hidden_states=patches,
            encoder_attention_mask=torch.ones(patches.shape[:-1], dtype=torch.long,
                                              device=self.device))
        return [text[len(cap.prompt):]
                for text in cap.tokenizer.batch_decode(out, skip_special_tokens=True)]

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

    def greedy_captions(self, images: torch.Tensor, probs: torch.Tensor, num_patches: int,
                        num_captions: int, seeds: Sequence[int],
                        encoded: Optional[torch.Tensor] = None) -> List[List[str]]:
        """:meth:`captions` of a batch of images at once, for greedy decoding (``top_k`` 1),
        where a caption depends only on its patches: each image's draws come from its own
        seed (on a CPU generator, as :meth:`captions` draws on the CPU), and all rows of a
        round are decoded together."""
        encoded = self.encode(images) if encoded is None else encoded
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        found: List[List[str]] = [[] for _ in seeds]
        with torch.no_grad():
            for _ in range(self.settings.max_rounds):
                todo = [i for i, f in enumerate(found) if len(f) < num_captions]
                if not todo:
                    break
                draws = torch.cat([torch.multinomial(probs[i:i + 1].cpu(), num_patches,
                                                     generator=gens[i]).sort(1).values
                                   for i in todo for _ in range(num_captions)])
                rows = encoded[torch.tensor(todo, device=self.device)].repeat_interleave(
                    num_captions, 0)
                texts = self._decode(rows, draws.to(self.device))
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
        """The answer to every question and how many captions it was given, its captions
        drawn under a seed from (``seed``, sample id); ``encoded``: the images' :meth:`encode`
        tokens, when already computed."""
        encoded = self.encode(images) if encoded is None else encoded
        probs = self.patch_probabilities(maps, num_patches)
        seeds = [sample_seed(seed, sid) for sid in sample_ids]
        if self.settings.top_k == 1:
            caps = self.greedy_captions(images, probs, num_patches, num_captions, seeds, encoded)
        else:
            caps = [self.captions(images[i:i + 1], probs[i:i + 1], num_patches, num_captions, s,
                                  encoded[i:i + 1]) for i, s in enumerate(seeds)]
        return [self.answer(q, c) if c else "" for q, c in zip(questions, caps)], \
            [len(c) for c in caps]


def sample_seed(seed: int, sample_id: str) -> int:
    """The torch seed of one question's captions: (run seed, crc32 of its id)."""
    return (int(seed) & 0xFFFFFFFF) * 2 ** 32 + zlib.crc32(str(sample_id).encode())


@dataclass(frozen=True)
class PipelineSpec:
    """Where a PNP-VQA pipeline's captioner and answerer come from.

    ``caption_file``: a LAVIS ``BlipCaption`` checkpoint (``--weights-dir`` or LAVIS's cache)
    of LAVIS's ``caption_config``; ``unifiedqa``: a Hugging Face repository id, read from the
    folder ``--weights-dir/<its last part>`` or the Hugging Face cache (offline); ``vit_depth``
    / ``text_layers`` reduce the captioner's depth (test variants of the same architecture).
    """

    caption_file: str
    unifiedqa: str
    caption_config: str = "blip_caption_large_coco.yaml"
    vit_depth: Optional[int] = None
    text_layers: Optional[int] = None


#: PNP-VQA's own configurations (LAVIS ``pnp_vqa_{base,large,3b}.yaml``): BLIP large caption
#: (COCO train2014) with UnifiedQA-v2 T5 base / large / 3B
PIPELINES: Dict[str, Union[PipelineSpec, "EmbeddedPipeline"]] = {
    f"pnp-vqa-{size}": PipelineSpec("model_large_caption_coco_train2014.pth",
                                    f"allenai/unifiedqa-v2-t5-{size}-1363200")
    for size in ("base", "large", "3b")}


@dataclass(frozen=True)
class EmbeddedPipeline:
    """A pipeline that ships with the suite: ``missing()`` says what is absent (or ``None``),
    ``load()`` returns its :class:`PnpVqa`, ``fingerprint()`` its weights' recorded sha256."""

    missing: Callable[[], Optional[str]]
    load: Callable[[], PnpVqa]
    fingerprint: Callable[[], Optional[str]]


def register_pipeline(name: str, spec: Union[PipelineSpec, EmbeddedPipeline]) -> None:
    """Add a pipeline selectable with ``--pnp-vqa NAME``."""
    PIPELINES[name] = spec


def _spec(name: str) -> Union[PipelineSpec, EmbeddedPipeline]:
    if name not in PIPELINES:
        raise InputError(f"unknown PNP-VQA pipeline {name!r}; known: {', '.join(PIPELINES)}")
    return PIPELINES[name]


def pipeline_fingerprint(name: str, weights_dir: Optional[str] = None,
                         tokenizer_dir: Optional[str] = None) -> Optional[str]:
    """The sha256 of what pipeline ``name`` answers with: an embedded pipeline's recorded
    weights' sha256; for one read from the user's files, the bytes of its caption checkpoint
    and UnifiedQA folder and the BERT vocabulary (where they are is not what they are).
    ``None`` when its files are not on disk, and for names that are not pipelines (rejected
    with the usage error). Kept with the run folder, so that units of two pipelines never mix."""
    spec = PIPELINES.get(name)
    if isinstance(spec, EmbeddedPipeline):
        return spec.fingerprint()
    if spec is None or missing_pipeline(name, weights_dir, tokenizer_dir):
        return None
    from benchmark.models.pretrained import bert_tokenizer, checkpoint_path

    folder = unifiedqa_folder(spec.unifiedqa, weights_dir)
    files = ((spec.caption_file, checkpoint_path(spec.caption_file, weights_dir)),) + tuple(
        sorted((str(p.relative_to(folder)), p) for p in folder.rglob("*") if p.is_file()))
    # hashed once per process while the files stay as they are (size and mtime)
    stats = tuple((label, p.stat().st_size, p.stat().st_mtime_ns) for label, p in files)
    vocab = repr(sorted(bert_tokenizer(tokenizer_dir).get_vocab().items()))
    return _files_sha256(repr(spec), files, stats, vocab)


@functools.lru_cache(maxsize=4)
def _files_sha256(head: str, files: Tuple[Tuple[str, Path], ...], stats: tuple,
                  tail: str) -> str:
    h = hashlib.sha256(head.encode())
    for label, path in files:  # in 16 MiB reads: a UnifiedQA-3B folder holds 11 GB
        h.update(label.encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
    h.update(tail.encode())
    return h.hexdigest()


def unifiedqa_folder(repo: str, weights_dir: Optional[str] = None) -> Path:
    """The local folder of the UnifiedQA model ``repo`` (``MissingWeights`` when absent)."""
    if weights_dir and (Path(weights_dir) / repo.split("/")[-1]).is_dir():
        return Path(weights_dir) / repo.split("/")[-1]
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo, local_files_only=True))
    except Exception as e:  # not in the cache (the hub raises several kinds)
        where = f"{Path(weights_dir) / repo.split('/')[-1]} nor " if weights_dir else ""
        raise MissingWeights(f"UnifiedQA model not on disk: neither {where}{repo} in the "
                             "Hugging Face cache (save it with save_pretrained into "
                             f"--weights-dir/{repo.split('/')[-1]})") from e


def missing_pipeline(name: str, weights_dir: Optional[str] = None,
                     tokenizer_dir: Optional[str] = None) -> Optional[str]:
    """``None`` when pipeline ``name`` can be loaded, else one line naming what is absent."""
    from benchmark.models.pretrained import bert_tokenizer, checkpoint_path

    spec = _spec(name)
    if isinstance(spec, EmbeddedPipeline):
        return spec.missing()
    path = checkpoint_path(spec.caption_file, weights_dir)
    if not path.exists():
        return (f"PNP-VQA captioner not on disk: {path} (copy LAVIS's {spec.caption_file} "
                "there, or pass --weights-dir DIR)")
    try:
        unifiedqa_folder(spec.unifiedqa, weights_dir)
        bert_tokenizer(tokenizer_dir)
    except MissingWeights as e:
        return str(e)
    return None


def load_answerer(folder: Path) -> nn.Module:
    """LAVIS ``PNPUnifiedQAv2FiD`` (T5 in fusion-in-decoder mode) of the Hugging Face folder
    ``folder``: its own ``config.json``, its weights loaded strictly, its T5 tokenizer."""
    from lavis.models.pnp_vqa_models.pnp_unifiedqav2_fid import PNPUnifiedQAv2FiD
    from transformers import T5Config, T5ForConditionalGeneration

    model = PNPUnifiedQAv2FiD(T5Config.from_pretrained(folder, local_files_only=True), str(folder))
    try:
        model.load_unifiedqa(T5ForConditionalGeneration.from_pretrained(
            folder, local_files_only=True).state_dict())
    except RuntimeError as e:
        raise InputError(f"UnifiedQA folder {folder} does not match its config.json: "
                         f"{str(e).splitlines()[0]}") from e
    return model.eval()


def load_pipeline(name: str, weights_dir: Optional[str] = None,
                  tokenizer_dir: Optional[str] = None) -> PnpVqa:
    """Pipeline ``name`` from local files (on the CPU; ``.to`` moves it)."""
    from lavis.models.blip_models.blip_caption import BlipCaption

    from benchmark.models.blip import blip_preprocessing
    from benchmark.models.pretrained import (bert_tokenizer, build_lavis, checkpoint_path,
                                             load_checkpoint)

    reason = missing_pipeline(name, weights_dir, tokenizer_dir)
    if reason:
        raise MissingWeights(reason)
    spec = _spec(name)
    if isinstance(spec, EmbeddedPipeline):
        return spec.load()
    captioner = build_lavis(BlipCaption, spec.caption_config, bert_tokenizer(tokenizer_dir),
                            spec.vit_depth, spec.text_layers)
    path = checkpoint_path(spec.caption_file, weights_dir)
    load_checkpoint(captioner, path, f"the captioner of {name} (LAVIS BlipCaption, "
                                     f"{spec.caption_config})")
    folder = unifiedqa_folder(spec.unifiedqa, weights_dir)
    answerer = load_answerer(folder)
    size = int(captioner.visual_encoder.patch_embed.img_size[0])
    info = {"captioner": str(path.resolve()), "answerer": str(folder.resolve()),
            "fingerprint": state_hash(captioner)[:16] + state_hash(answerer)[:16]}
    return PnpVqa(captioner, answerer, name, blip_preprocessing(size), info=info)


def _register_embedded() -> None:
    from benchmark.models import pnp_tiny

    register_pipeline(pnp_tiny.NAME, EmbeddedPipeline(pnp_tiny.missing_tiny, pnp_tiny.load_tiny,
                                                      pnp_tiny.recorded_sha256))


_register_embedded()
