"""Pretrained files written in the layout a researcher has, with random weights: LAVIS
checkpoints (``{"model": state_dict}`` with the retrieval checkpoints' extra keys) and a
30,522-word ``bert-base-uncased`` vocabulary, in a folder or in the Hugging Face cache."""
from __future__ import annotations

import string
from pathlib import Path
from typing import Optional

import torch

from benchmark.models.tiny import VOCAB_FILE

BERT_VOCAB_SIZE = 30522
#: the BERT special tokens at their ids in bert-base-uncased
SPECIALS = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
#: a commit-like revision for the cache's ``refs/main``
REVISION = "0a6aa9128b6194f4f3c4db429b6cb4891cdb421b"


def bert_vocab(path: Path) -> Path:
    """A ``vocab.txt`` of bert-base-uncased's size: its special tokens at their ids, single
    characters, the synthetic scenes' words, then fillers."""
    words = list(SPECIALS)
    seen = set(words)
    domain = [w.strip() for w in VOCAB_FILE.read_text().splitlines()]
    for w in list(string.ascii_lowercase + string.digits + string.punctuation) + domain:
        if w and w not in seen:
            words.append(w)
            seen.add(w)
    words += [f"##filler{i}" for i in range(BERT_VOCAB_SIZE - len(words))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(words) + "\n")
    return path


def hf_cache_tokenizer(hf_home: Path) -> Path:
    """``bert-base-uncased``'s vocabulary in the Hugging Face cache under ``hf_home`` (what
    ``from_pretrained("bert-base-uncased")`` left there on a machine with internet)."""
    repo = hf_home / "hub" / "models--bert-base-uncased"
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    return bert_vocab(repo / "snapshots" / REVISION / "vocab.txt")


def lavis_checkpoint(path: Path, vit_type: str, tokenizer_dir: Path,
                     vit_depth: Optional[int] = None, text_layers: Optional[int] = None,
                     seed: int = 1, fusion: Optional[dict] = None) -> dict:
    """A random-weight BLIP-ITM of LAVIS's ``vit_type`` config (reduced to ``vit_depth`` /
    ``text_layers`` when given; with a MultiLevelEncoder of settings ``fusion``) saved as
    LAVIS's retrieval checkpoints are: ``{"model": …}`` with momentum-encoder, queue and
    temperature entries; returns the state dict."""
    from benchmark.models.blip import patch_grid
    from benchmark.models.difnet import FusedVisualEncoder
    from benchmark.models.pretrained import bert_tokenizer, build_blip_itm

    model = build_blip_itm(vit_type, bert_tokenizer(tokenizer_dir), vit_depth, text_layers,
                           seed=seed)
    if fusion is not None:
        vit = model.visual_encoder
        model.visual_encoder = FusedVisualEncoder(vit, grid=patch_grid(vit)[0], **fusion)
    state = model.state_dict()
    width = state["itm_head.weight"].shape[1]
    cls_token = next(v for k, v in state.items() if k.endswith("cls_token"))
    extra = {"visual_encoder_m.cls_token": cls_token.clone(),
             "vision_proj_m.weight": state["vision_proj.weight"].clone(),
             "image_queue": torch.zeros(256, 8), "text_queue": torch.zeros(256, 8),
             "idx_queue": torch.zeros(1, 8), "ptr_queue": torch.zeros(1, dtype=torch.long),
             "temp": torch.tensor(0.07), "text_encoder_m.embeddings.LayerNorm.weight":
             torch.ones(width)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {**state, **extra}}, path)
    return state


def lavis_caption_checkpoint(path: Path, tokenizer_dir: Path, vit_depth: Optional[int] = None,
                             text_layers: Optional[int] = None, seed: int = 1) -> dict:
    """A random-weight LAVIS ``BlipCaption`` of ``blip_caption_large_coco.yaml`` (PNP-VQA's
    captioner; reduced when asked) saved as ``{"model": state_dict}``; returns the state."""
    from lavis.models.blip_models.blip_caption import BlipCaption

    from benchmark.models.pretrained import bert_tokenizer, build_lavis

    model = build_lavis(BlipCaption, "blip_caption_large_coco.yaml", bert_tokenizer(tokenizer_dir),
                        vit_depth, text_layers, seed=seed)
    state = model.state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state}, path)
    return state


def unifiedqa_folder(folder: Path, layers: Optional[int] = None, seed: int = 1) -> Path:
    """A random-weight UnifiedQA-v2 T5 base (LAVIS's ``unifiedqav2_base_config.json``, with
    ``layers`` encoder and decoder layers when given) as ``save_pretrained`` writes it, with a
    T5 sentencepiece tokenizer trained on the synthetic questions and answers."""
    import io

    import sentencepiece as spm
    from lavis.common.registry import registry
    from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

    import datasets

    root = Path(registry.get_path("library_root"))
    config = T5Config.from_json_file(root / "configs/models/pnp-vqa/unifiedqav2_base_config.json")
    if layers is not None:
        config.num_layers = config.num_decoder_layers = layers
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    T5ForConditionalGeneration(config).save_pretrained(folder)
    data = datasets.get("synthetic")(split="train", seed=0)
    text = [f"{data[i].question} {data[i].answers[0]}" for i in range(min(len(data), 2000))]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=model,
                                   vocab_size=200, hard_vocab_limit=False, pad_id=0, eos_id=1,
                                   unk_id=2, bos_id=-1, model_type="unigram", minloglevel=2)
    (folder / "spiece.model").write_bytes(model.getvalue())
    T5Tokenizer(vocab_file=str(folder / "spiece.model")).save_pretrained(folder)
    return folder


def lavis_blip2_checkpoints(folder: Path, tokenizer_dir: Path, vit_depth: Optional[int] = None,
                            qformer_layers: Optional[int] = None, seed: int = 1) -> dict:
    """A random-weight LAVIS BLIP-2 ITM (``pretrain`` config, reduced when depths are given) as
    LAVIS downloads it: ``eva_vit_g.pth`` (the ViT's bare state dict) and
    ``blip2_pretrained.pth`` (``{"model": …}`` without the ViT); returns the whole state dict."""
    from benchmark.models.pretrained_blip2 import (EVA_FILE, QFORMER_FILE, blip2_tokenizer,
                                                   build_blip2_itm)

    model = build_blip2_itm(blip2_tokenizer(tokenizer_dir), vit_depth, qformer_layers, seed=seed)
    state = model.state_dict()
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.visual_encoder.state_dict(), folder / EVA_FILE)
    torch.save({"model": {k: v for k, v in state.items() if not k.startswith("visual_encoder.")}},
               folder / QFORMER_FILE)
    return state
