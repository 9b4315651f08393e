"""Training of the embedded PNP-VQA (:mod:`benchmark.models.pnp_tiny`): its tokenizers, its
captioner, its answerer, and their held-out accuracy.

* tokenizers: the captioner's BERT vocabulary is the ITM models' plus the caption words; the
  answerer's sentencepiece model (BPE: whole words, punctuation apart) is trained on synthetic passages in the exact form
  LAVIS's ``prepare_qa_input`` writes them (``"question \\n caption."``) and the answers;
* captioner: per step, a batch of scenes is encoded once and each scene is read through
  ``views`` patch draws of one size k (k uniform in 1..``max_patches``, drawn as in
  :func:`~benchmark.training.pnp_data.draw_patches`); LM loss on the caption of the drawn
  patches (LAVIS ``BlipCaption``'s: the prompt is not a target) plus the per-patch attribute
  loss on the ViT's tokens (weight ``aux_weight``), as the ITM models are trained;
* answerer: per example, exactly 20 passages as the pipeline gives them at test time — the
  distinct captions of rounds of 20 *uniform* draws of k ∈ {1, 2, 5, 10} patches (the curve's
  patch counts), cycled to 20 (:func:`~benchmark.training.pnp_data.passages`) — written
  from the scene description, or (``captioner_share`` of the examples) by the trained captioner
  itself from such draws, precomputed for ``captioner_scenes`` scenes; no draw ever follows the
  question's evidence (LAVIS's PNP-VQA answers zero-shot). Teacher-forced cross-entropy on the
  answer. ``train --model pnp-vqa-tiny --answerer-only`` retrains the answerer alone beside the
  shipped captioner and tokenizers, and records the held-out accuracy before and after.

AdamW with warm-up and cosine decay, gradient clipping, fixed seeds and steps (the ITM models'
schedule, :mod:`benchmark.training.loop`).
"""
from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

from benchmark.training.labels import VOCABULARY
from benchmark.training.loop import _optimiser, _schedule
from benchmark.training.pnp_data import (CAPTION_WORDS, PROMPT, ScenePool, build_scene_pool,
                                             caption, draw_patches, passages)
from benchmark.training.pnp_eval import CURVE_PATCHES, captioner_passages, evaluate_pipeline
from benchmark.training.recipe import patch_attribute_loss


@dataclass(frozen=True)
class PnpTrainConfig:
    """Hyper-parameters of the embedded PNP-VQA's training (recorded in its ``.json``)."""

    caption_steps: int = 4000
    answer_steps: int = 6000
    batch_size: int = 32
    views: int = 4  # patch draws per scene and captioner step
    max_patches: int = 12
    aux_weight: float = 0.5
    num_captions: int = 20
    pool_size: int = 20000
    eval_scenes: int = 300  # held-out test scenes behind the recorded accuracies
    lr: float = 2e-3  # the captioner's peak learning rate
    # the answerer's: at 2e-3 its held-out exact match was 0.60 after 6000 steps, at 5e-4 0.77
    answer_lr: float = 5e-4
    weight_decay: float = 0.05
    warmup: int = 200
    seed: int = 0
    data_seed: int = 0
    rounds: int = 3  # rounds of draws to num_captions distinct captions (the pipeline's cap)
    captioner_share: float = 0.5  # examples whose passages the captioner wrote
    captioner_scenes: int = 2000  # scenes those passages are precomputed for


def passage_text(question: str, captions: Sequence[str]) -> List[str]:
    """One passage per caption, as LAVIS's ``prepare_qa_input`` writes them with
    ``num_captions_fid=1``."""
    return [f"{question.lower().strip()} \\n {c.strip()}." for c in captions]


def write_tokenizers(folder: Path, pool: ScenePool, base_vocab: Path) -> None:
    """The captioner's vocabulary and the answerer's sentencepiece tokenizer into ``folder``."""
    import sentencepiece as spm
    from transformers import T5Tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    words = base_vocab.read_text().split("\n")
    words = [w for w in words if w] + [w for w in CAPTION_WORDS if w not in words]
    (folder / "caption_vocab.txt").write_text("\n".join(words) + "\n")
    rng = np.random.default_rng(0)
    text = []
    for i in range(min(len(pool.questions), 4000)):
        caps = passages(rng, pool.objects[i], pool.patch_objects[i].numpy(), 4,
                        int(rng.choice(CURVE_PATCHES)), 1)
        text += passage_text(pool.questions[i], caps) + [pool.answers[i]]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text), model_writer=model,
                                   vocab_size=200, hard_vocab_limit=False, pad_id=0, eos_id=1,
                                   unk_id=2, bos_id=-1, model_type="bpe", num_threads=1,
                                   minloglevel=2)
    (folder / "spiece.model").write_bytes(model.getvalue())
    T5Tokenizer(vocab_file=str(folder / "spiece.model"), extra_ids=0).save_pretrained(folder)


def _steps(model, steps: int, lr: float, tcfg: PnpTrainConfig, seed: int, desc: str,
           progress: bool, loss_fn) -> Dict[str, float]:
    from tqdm import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = _optimiser(model, tcfg)
    lr_at = _schedule(lr, tcfg.warmup, steps)
    model.train()
    running: Dict[str, float] = {}
    with tqdm(range(steps), disable=not progress, unit="step", desc=desc) as bar:
        for step in bar:
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            losses = loss_fn(rng)
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            for k, v in losses.items():
                running[k] = 0.98 * running[k] + 0.02 * v.item() if step else v.item()
            if step % 20 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in running.items()}, refresh=False)
    model.eval()
    return running


def caption_batch(pool: ScenePool, idx: Sequence[int], rng: np.random.Generator, k: int,
                  views: int):
    """(patch indices (B·views, k), captions) of ``views`` draws of ``k`` patches per scene."""
    draws, texts = [], []
    for i in idx:
        under = pool.patch_objects[i].numpy()
        for _ in range(views):
            d = np.sort(draw_patches(rng, under, k))
            draws.append(d)
            texts.append(PROMPT + caption(pool.objects[i], under[d]))
    return torch.from_numpy(np.stack(draws)), texts


def captioner_loss(captioner, preprocessing, pool: ScenePool, idx, rng, tcfg: PnpTrainConfig):
    """LM loss on the captions of random patch draws + the per-patch attribute loss."""
    k = int(rng.integers(1, tcfg.max_patches + 1))
    draws, texts = caption_batch(pool, idx, rng, k, tcfg.views)
    embeds = captioner.forward_encoder({"image": preprocessing.normalise(pool.images[idx])})
    rows = embeds.repeat_interleave(tcfg.views, 0)
    patches = torch.gather(rows, 1, (draws + 1)[:, :, None].expand(-1, -1, rows.shape[-1]))
    out, _ = captioner.forward_decoder({"text_input": texts}, patches)
    aux = patch_attribute_loss(captioner, embeds, pool.patch_targets[idx])
    return {"loss": out.loss + tcfg.aux_weight * aux, "lm": out.loss, "aux": aux}


def answer_examples(pool: ScenePool, idx, rng, tcfg: PnpTrainConfig, written=None):
    """(passages per example, answers) for the answerer: scene-description passages of uniform
    draws, or with probability ``captioner_share`` the captioner's own (``written``: scene →
    passages, :func:`captioner_passages`)."""
    texts = []
    for i in idx:
        if written is not None and int(i) in written and rng.random() < tcfg.captioner_share:
            caps = written[int(i)]
        else:
            caps = passages(rng, pool.objects[i], pool.patch_objects[i].numpy(),
                            tcfg.num_captions, int(rng.choice(CURVE_PATCHES)), tcfg.rounds)
        texts.append(passage_text(pool.questions[i], caps))
    return texts, [pool.answers[i] for i in idx]


def fid_inputs(tokenizer, examples: Sequence[Sequence[str]]):
    """(B, P, L) input ids and attention mask, absent passages all-masked."""
    p = max(len(e) for e in examples)
    flat = [t for e in examples for t in e]
    enc = tokenizer(flat, padding="longest", return_tensors="pt")
    ids = torch.zeros(len(examples), p, enc.input_ids.shape[1], dtype=torch.long)
    mask = torch.zeros_like(ids)
    at = 0
    for b, e in enumerate(examples):
        ids[b, :len(e)] = enc.input_ids[at:at + len(e)]
        mask[b, :len(e)] = enc.attention_mask[at:at + len(e)]
        at += len(e)
    return ids, mask


def answerer_loss(answerer, pool: ScenePool, idx, rng, tcfg: PnpTrainConfig, written=None):
    texts, answers = answer_examples(pool, idx, rng, tcfg, written)
    ids, mask = fid_inputs(answerer.tokenizer, texts)
    labels = answerer.tokenizer(answers, padding="longest", return_tensors="pt").input_ids
    labels = labels.masked_fill(labels == answerer.tokenizer.pad_token_id, -100)
    # return_dict=False: LAVIS's encoder wrapper returns a tuple
    loss = answerer(input_ids=ids, attention_mask=mask, labels=labels, return_dict=False)[0]
    return {"loss": loss}


def _train_captioner(cfg, tcfg: PnpTrainConfig, pool: ScenePool, folder: Path, prep,
                     progress: bool):
    from benchmark.models import pnp_tiny

    captioner = pnp_tiny.build_captioner(cfg, VOCABULARY, tcfg.seed, folder)
    n, t0 = len(pool.questions), time.time()
    losses = _steps(captioner, tcfg.caption_steps, tcfg.lr, tcfg, tcfg.seed,
                    "training captioner", progress, lambda rng: captioner_loss(
                        captioner, prep, pool, rng.choice(n, tcfg.batch_size, replace=False),
                        rng, tcfg))
    return captioner, {"caption_seconds": time.time() - t0,
                       **{f"final_caption_{k}_loss": x for k, x in losses.items()
                          if k != "loss"}}


def _train_answerer(cfg, tcfg: PnpTrainConfig, pool: ScenePool, folder: Path, written,
                    progress: bool):
    from benchmark.models import pnp_tiny

    answerer = pnp_tiny.build_answerer(cfg, tcfg.seed, folder)
    n, t0 = len(pool.questions), time.time()
    losses = _steps(answerer, tcfg.answer_steps, tcfg.answer_lr, tcfg, tcfg.seed + 1,
                    "training answerer", progress, lambda rng: answerer_loss(
                        answerer, pool, rng.choice(n, tcfg.batch_size, replace=False), rng,
                        tcfg, written))
    return answerer, {"answer_seconds": time.time() - t0, "final_answer_loss": losses["loss"]}


def train_pnp_tiny(dest: Path, tcfg: PnpTrainConfig = PnpTrainConfig(), cfg=None,
                   progress: bool = True, answerer_only: bool = False) -> dict:
    """Build the tokenizers, train captioner and answerer, evaluate on the test split, and
    write ``dest`` (.pt), its ``.json`` and the tokenizer folder beside it. With
    ``answerer_only`` the shipped captioner and tokenizers are kept and the answerer alone is
    retrained; the record holds the held-out accuracies of the shipped pipeline (``before``)
    and of the new one on the same scenes."""
    from benchmark.models import pnp_tiny
    from benchmark.models.pnp_vqa_pipeline import TINY_SETTINGS, PnpVqa
    from benchmark.models.tiny import VOCAB_FILE, preprocessing
    from benchmark.core.atomic import write_atomic

    cfg = cfg or pnp_tiny.TinyPnpConfig()
    t0, v = time.time(), cfg.vision
    pool = build_scene_pool("train", tcfg.pool_size, v.image_size, v.patch_size, tcfg.data_seed,
                            progress)
    test = build_scene_pool("test", tcfg.eval_scenes, v.image_size, v.patch_size, tcfg.data_seed,
                            progress)
    prep, folder, record = preprocessing(v), dest.parent / f"{dest.stem}-tokenizers", {}
    if answerer_only:
        shipped, folder = pnp_tiny.load_tiny(), pnp_tiny.TOKENIZERS
        captioner = shipped.captioner
        record = {"before": evaluate_pipeline(shipped, test, tcfg),
                  "captioner_from": shipped.info["sha256"]}
    else:
        write_tokenizers(folder, pool, VOCAB_FILE)
        captioner, stats = _train_captioner(cfg, tcfg, pool, folder, prep, progress)
        record.update(stats)
    reader = PnpVqa(captioner, None, pnp_tiny.NAME, prep, TINY_SETTINGS)
    written = captioner_passages(reader, pool, min(tcfg.captioner_scenes, len(pool.images)), tcfg,
                                 seed=tcfg.data_seed)
    answerer, stats = _train_answerer(cfg, tcfg, pool, folder, written, progress)
    pipe = PnpVqa(captioner, answerer, pnp_tiny.NAME, prep, TINY_SETTINGS)
    data = pnp_tiny.checkpoint_bytes(captioner, answerer)
    meta = {"name": pnp_tiny.NAME, "config": cfg.to_dict(), "train_config": asdict(tcfg),
            "sha256": hashlib.sha256(data).hexdigest(), "checkpoint": dest.name,
            **record, **stats, **evaluate_pipeline(pipe, test, tcfg),
            "train_seconds": time.time() - t0,
            "tokenizer_sha256": pnp_tiny.tokenizer_hashes(folder),
            "vocabulary": VOCABULARY.to_record(),
            "torch": torch.__version__, "trained_at": time.strftime("%Y-%m-%d")}
    write_atomic(dest, data)
    write_atomic(dest.with_suffix(".json"), json.dumps(meta, indent=1, sort_keys=True))
    return meta
