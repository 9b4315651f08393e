"""The embedded PNP-VQA (``--pnp-vqa pnp-vqa-tiny``): LAVIS's own ``BlipCaption`` and
``PNPUnifiedQAv2FiD`` classes at small widths, trained on the synthetic scenes, so the default
run measures PNP-VQA's real downstream — captions from the patches a map selects, answers from
the captions — and not only the ITM model's own answer head.

* captioner: the tiny models' ViT (convolutional stem, 96 px, 12×12 patches) and a 2-layer
  BERT decoder with cross-attention (LAVIS ``XBertLMHeadDecoder``), prompt ``"a picture of "``,
  over the question vocabulary plus the caption words; trained to describe the objects under
  the patches it is given (:mod:`benchmark.training.pnp_data`);
* answerer: a 2 + 2-layer T5 in fusion-in-decoder mode with a sentencepiece tokenizer trained on
  the synthetic passages, trained on questions and the captions such patch draws give.

Both load from one shipped checkpoint (sha256-checked, config in its ``.json``) and the
tokenizer folder beside it; ``python -m benchmark train --model pnp-vqa-tiny`` rebuilds them.
"""
from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Optional

import torch
from torch import nn

from benchmark.models import CHECKPOINT_DIR
from benchmark.core.errors import MissingWeights
from benchmark.models.tiny import TinyConfig, Vocabulary, build_tiny_vit, preprocessing

NAME = "pnp-vqa-tiny"
PROMPT = "a picture of "  # PNP-VQA's captioning prompt
TOKENIZERS = CHECKPOINT_DIR / f"{NAME}-tokenizers"


@dataclass(frozen=True)
class TinyPnpConfig:
    """The embedded PNP-VQA's architecture (hashed into its fingerprint)."""

    vision: TinyConfig = field(default_factory=TinyConfig)  # its image-side fields only
    decoder_width: int = 96
    decoder_layers: int = 2
    decoder_heads: int = 4
    t5_width: int = 96
    t5_layers: int = 2
    t5_heads: int = 4
    t5_ff: int = 256

    def to_dict(self) -> dict:
        return asdict(self)


def caption_tokenizer(folder: Path = TOKENIZERS):
    """The captioner's BERT tokenizer (LAVIS's ``[DEC]``/``[ENC]`` added)."""
    from transformers import BertTokenizer

    from benchmark.models.blip import with_blip_tokens

    return with_blip_tokens(BertTokenizer(vocab_file=str(folder / "caption_vocab.txt"),
                                          do_lower_case=True))


def build_captioner(cfg: TinyPnpConfig, vocab: Vocabulary, seed: int = 0,
                    folder: Path = TOKENIZERS) -> nn.Module:
    """LAVIS ``BlipCaption`` of ``cfg`` (seeded, untrained), with a per-patch attribute head
    over ``vocab`` used only in training."""
    from lavis.models.blip_models.blip_caption import BlipCaption
    from lavis.models.med import BertConfig, XBertLMHeadDecoder

    tok = caption_tokenizer(folder)

    class TinyBlipCaption(BlipCaption):
        @classmethod
        def init_tokenizer(cls):
            return tok

    torch.manual_seed(seed)
    vit = build_tiny_vit(cfg.vision)
    bert = BertConfig(vocab_size=len(tok), hidden_size=cfg.decoder_width,
                      num_hidden_layers=cfg.decoder_layers,
                      num_attention_heads=cfg.decoder_heads,
                      intermediate_size=4 * cfg.decoder_width, max_position_embeddings=32,
                      add_cross_attention=True, encoder_width=cfg.vision.vit_width,
                      add_type_embeddings=False, hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0, pad_token_id=0)
    model = TinyBlipCaption(vit, XBertLMHeadDecoder(config=bert), prompt=PROMPT, max_txt_len=24)
    model.patch_head = nn.Linear(cfg.vision.vit_width, sum(vocab.patch_groups.values()))
    return model


def build_answerer(cfg: TinyPnpConfig, seed: int = 0, folder: Path = TOKENIZERS,
                   state: Optional[Dict[str, torch.Tensor]] = None) -> nn.Module:
    """LAVIS ``PNPUnifiedQAv2FiD`` of ``cfg`` with ``state`` (Hugging Face T5 keys; default:
    its seeded initialisation), loaded and wrapped for fusion-in-decoder by LAVIS's own
    ``load_unifiedqa``."""
    from lavis.models.pnp_vqa_models.pnp_unifiedqav2_fid import PNPUnifiedQAv2FiD
    from transformers import T5Config, T5Tokenizer

    vocab = len(T5Tokenizer.from_pretrained(str(folder)))
    config = T5Config(vocab_size=vocab, d_model=cfg.t5_width, d_kv=cfg.t5_width // cfg.t5_heads,
                      d_ff=cfg.t5_ff, num_layers=cfg.t5_layers, num_heads=cfg.t5_heads,
                      dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
                      eos_token_id=1)
    torch.manual_seed(seed)
    model = PNPUnifiedQAv2FiD(config, str(folder))
    model.load_unifiedqa(model.state_dict() if state is None else state)
    return model


def unwrapped_state(answerer: nn.Module) -> Dict[str, torch.Tensor]:
    """The answerer's weights in the Hugging Face T5 layout (``load_unifiedqa``'s input)."""
    return {k.replace("encoder.encoder.", "encoder.", 1): v
            for k, v in answerer.state_dict().items()}


def checkpoint_bytes(captioner: nn.Module, answerer: nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save({"captioner": captioner.state_dict(), "answerer": unwrapped_state(answerer)}, buf)
    return buf.getvalue()


def missing_tiny(*_, **__) -> Optional[str]:
    """``None`` when the shipped embedded PNP-VQA is on disk, else the line saying how to
    build it."""
    for path in (CHECKPOINT_DIR / f"{NAME}.pt", CHECKPOINT_DIR / f"{NAME}.json",
                 TOKENIZERS / "spiece.model", TOKENIZERS / "caption_vocab.txt"):
        if not path.exists():
            return (f"embedded PNP-VQA not on disk: {path} (run `python -m benchmark train "
                    f"--model {NAME}`)")
    return None


def tokenizer_hashes(folder: Path) -> Dict[str, str]:
    """sha256 of every file of a tokenizer folder, by file name (recorded in the checkpoint's
    ``.json`` at training, checked at loading)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


def recorded_sha256() -> Optional[str]:
    """The shipped checkpoint's sha256 as its ``.json`` records it (``None`` when absent)."""
    path = CHECKPOINT_DIR / f"{NAME}.json"
    return json.loads(path.read_text())["sha256"] if path.exists() else None


def load_tiny(*_, **__):
    """The shipped embedded PNP-VQA (sha256-checked), on the CPU."""
    from benchmark.models.pnp_vqa_pipeline import TINY_SETTINGS, PnpVqa
    from benchmark.models.tensors import state_hash

    reason = missing_tiny()
    if reason:
        raise MissingWeights(reason)
    meta = json.loads((CHECKPOINT_DIR / f"{NAME}.json").read_text())
    data = (CHECKPOINT_DIR / f"{NAME}.pt").read_bytes()
    if hashlib.sha256(data).hexdigest() != meta["sha256"]:
        raise MissingWeights(f"{CHECKPOINT_DIR / NAME}.pt does not match its recorded sha256; "
                             f"rebuild it with `python -m benchmark train --model {NAME}`")
    # the weights' ids mean these tokenizers' pieces: another vocabulary reads them as noise
    held = tokenizer_hashes(TOKENIZERS)
    changed = sorted(n for n, sha in meta.get("tokenizer_sha256", {}).items() if held.get(n) != sha)
    if changed:
        raise MissingWeights(f"{TOKENIZERS / changed[0]} is missing or does not match the sha256 "
                             f"recorded in {NAME}.json; restore it from the suite or rebuild "
                             f"with `python -m benchmark train --model {NAME}`")
    cfg = TinyPnpConfig(vision=TinyConfig(**meta["config"]["vision"]),
                        **{k: v for k, v in meta["config"].items() if k != "vision"})
    state = torch.load(io.BytesIO(data), map_location="cpu")
    captioner = build_captioner(cfg, Vocabulary.from_record(meta["vocabulary"]),
                                folder=TOKENIZERS)
    captioner.load_state_dict(state["captioner"])
    answerer = build_answerer(cfg, folder=TOKENIZERS, state=state["answerer"])
    info = {"checkpoint": f"{NAME}.pt", "sha256": meta["sha256"],
            "fingerprint": state_hash(captioner)[:16] + state_hash(answerer)[:16],
            **{k: meta.get(k) for k in ("caption_accuracy", "answer_accuracy", "train_seconds")}}
    return PnpVqa(captioner.eval(), answerer.eval(), NAME, preprocessing(cfg.vision),
                  TINY_SETTINGS, info)
