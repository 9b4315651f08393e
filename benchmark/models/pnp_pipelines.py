"""The PNP-VQA pipelines a run can name (``--pnp-vqa NAME``): PNP-VQA's own configurations read
from local files (a LAVIS ``BlipCaption`` checkpoint and a UnifiedQA-v2 folder), pipelines that
ship with the suite (``pnp-vqa-tiny``), and the sha256 a run folder keeps of each."""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple, Union

from torch import nn

from benchmark.core.errors import InputError
from benchmark.core.errors import MissingWeights
from benchmark.models.tensors import state_hash
from benchmark.models.pnp_vqa_pipeline import PnpVqa


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
