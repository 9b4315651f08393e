"""Fine-tuning ``difnet-itm-base``: BLIP-ITM base (initialised from LAVIS's
``model_base_retrieval_coco.pth``, every key checked) with DIFNet's MultiLevelEncoder (Lf=1,
T=2, N=3, 133 panoptic classes; new, seeded) after its ViT, trained on image-question matching
with hard negatives as BLIP does, on VQA v2 (or any dataset the suite loads).

Per step, for B matched (image, question) pairs: the image and question features of BLIP's
contrastive heads (``vision_proj``, ``text_proj``, fixed temperature 0.07) give each image a
negative question drawn ∝ softmax of its similarities, and each question a negative image, never
the pair's own (nor a question with the same text); the ITM head is trained with cross-entropy
on the B positives and 2B negatives (BLIP's ITM loss; BLIP also trains the contrastive loss,
which this fine-tuning leaves out). AdamW (the fusion encoder at ``fusion_lr``, the rest at
``lr``), linear warm-up then cosine decay, gradient clipping at 1, ``accumulate`` batches per
step, ``precision`` bf16/fp16 under ``torch.autocast`` (fp16 with a gradient scaler).

A checkpoint (weights, optimiser, scaler, data order, random states, CUDA's included) is
written atomically every ``checkpoint_every`` steps to ``out/finetune-last.pt``; a rerun with
the same settings resumes from it and, on the CPU, gives the same weights as an uninterrupted
run (on a GPU, to the extent its kernels are deterministic). Records are read per batch, so the
split's images are never all in memory; a question without its image file is refused before
the first step. The result is
``out/difnet_itm_base.pth`` (the state dict ``--models difnet-itm-base --weights-dir out``
reads).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.core.errors import InputError
from benchmark.core.atomic import remove_stale_temporaries, write_atomic
from benchmark.models.tensors import TextBatch

RESULT = "difnet_itm_base.pth"
LAST = "finetune-last.pt"
TEMPERATURE = 0.07


@dataclass
class FinetuneConfig:
    """Everything that determines the fine-tuned weights (its digest keys the checkpoint)."""

    dataset: str = "vqav2"
    data_root: Optional[str] = None
    split: str = "train"
    segmentation: str = "exact"
    steps: int = 10000
    batch_size: int = 32
    accumulate: int = 1
    lr: float = 1e-5
    fusion_lr: float = 1e-4
    weight_decay: float = 0.05
    warmup: int = 500
    precision: str = "fp32"
    seed: int = 0
    vit_depth: Optional[int] = None  # reduced-depth variants (smoke tests)
    text_layers: Optional[int] = None

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def build(cfg: FinetuneConfig, weights_dir: Optional[str], tokenizer_dir: Optional[str]):
    """BLIP-ITM base from LAVIS's checkpoint with a new (seeded) MultiLevelEncoder after its
    ViT, behind the protocol."""
    from benchmark.models import wrap
    from benchmark.models.blip import patch_grid
    from benchmark.models.difnet import FusedVisualEncoder
    from benchmark.models.pretrained import (CHECKPOINTS, DIFNET_FUSION, bert_tokenizer,
                                             build_blip_itm, checkpoint_path, load_checkpoint)

    model = build_blip_itm("base", bert_tokenizer(tokenizer_dir), cfg.vit_depth, cfg.text_layers)
    path = checkpoint_path(CHECKPOINTS["blip-itm-base"][1], weights_dir)
    if not path.exists():
        raise InputError(f"BLIP base checkpoint not on disk: {path} (copy LAVIS's "
                         f"{path.name} there, or pass --weights-dir DIR)")
    load_checkpoint(model, path, "BLIP-ITM base")
    torch.manual_seed(cfg.seed)
    vit = model.visual_encoder
    model.visual_encoder = FusedVisualEncoder(vit, grid=patch_grid(vit)[0], **DIFNET_FUSION)
    return wrap(model, name="difnet-itm-base", info={})


def _features(module, image_embeds: torch.Tensor, text: TextBatch) -> tuple:
    """Normalised contrastive features of the images (CLS) and questions (BLIP's text-only
    pass, ``[CLS]`` first as its contrastive head was trained)."""
    image = F.normalize(module.vision_proj(image_embeds[:, 0]), dim=-1)
    ids = text.input_ids.clone()
    ids[:, 0] = module.tokenizer.cls_token_id
    out = module.text_encoder(ids, attention_mask=text.attention_mask, return_dict=True,
                              mode="text")
    return image, F.normalize(module.text_proj(out.last_hidden_state[:, 0]), dim=-1)


def itm_loss(adapter, images: torch.Tensor, questions, generator: torch.Generator) -> torch.Tensor:
    """BLIP's ITM loss with hard negatives mined by contrastive similarity (module docstring)."""
    module, b = adapter.module, images.shape[0]
    embeds = adapter.visual_tokens(images)
    text = adapter.tokenize(questions)
    with torch.no_grad():
        img_feat, txt_feat = _features(module, embeds, text)
        sim = img_feat @ txt_feat.t() / TEMPERATURE
        same = torch.tensor([[qa == qb for qb in questions] for qa in questions],
                            device=sim.device) | torch.eye(b, dtype=torch.bool, device=sim.device)
        w_i2t = sim.float().softmax(1).masked_fill(same, 0) + (~same) * 1e-12
        w_t2i = sim.t().float().softmax(1).masked_fill(same, 0) + (~same) * 1e-12
        neg_text = torch.multinomial(w_i2t.cpu(), 1, generator=generator)[:, 0]
        neg_image = torch.multinomial(w_t2i.cpu(), 1, generator=generator)[:, 0]
    all_embeds = torch.cat([embeds, embeds, embeds[neg_image.to(embeds.device)]])
    all_text = TextBatch(torch.cat([text.input_ids, text.input_ids[neg_text], text.input_ids]),
                          torch.cat([text.attention_mask, text.attention_mask[neg_text],
                                     text.attention_mask]))
    logits = adapter.itm_logits_from_tokens(all_embeds, all_text)
    labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).long().to(logits.device)
    return F.cross_entropy(logits.float(), labels)


def _open_data(cfg: FinetuneConfig):
    """The training dataset, checked: enough questions for hard negatives, every image on
    disk (refused up front, not at the batch that reaches it), a stream fit for training."""
    import datasets
    from benchmark.models.tensors import PRECISIONS

    if cfg.batch_size < 2:
        raise InputError("--batch-size must be at least 2: hard negatives come from the batch")
    if cfg.precision not in PRECISIONS:
        raise InputError(f"unknown precision {cfg.precision!r}; use {', '.join(PRECISIONS)}")
    if cfg.segmentation == "shuffled":
        raise InputError("--segmentation shuffled is an evaluation control (each image reads "
                         "another's stream); fine-tune on exact, npy:DIR or panoptic:PATH")
    data = datasets.get(cfg.dataset)(split=cfg.split, seed=cfg.seed,
                                     **({"data_root": cfg.data_root} if cfg.data_root else {}))
    n = len(data)
    if n < 2:
        raise InputError(f"dataset {cfg.dataset!r} split {cfg.split!r} has {n} "
                         "question(s); hard negatives need at least 2")
    missing = data.missing_images()
    if missing:
        sid, path = missing[0]
        raise InputError(f"{len(missing)} of {n} questions have no image file (first: question "
                         f"{sid}, {path}); fine-tuning needs every image — complete the image "
                         "folder or drop those questions from the question and annotation files")
    return data


class _Run:
    """One fine-tuning process: the model, optimiser, scaler, data order and random states,
    fresh or restored from a checkpoint, advanced one optimiser step at a time."""

    def __init__(self, cfg: FinetuneConfig, data, adapter, device: str) -> None:
        from benchmark.models.tensors import PRECISIONS
        from benchmark.training.loop import _schedule

        self.cfg, self.data, self.adapter, self.device = cfg, data, adapter, device
        module = self.module = adapter.module
        fusion = [p for p in module.visual_encoder.fusion.parameters()] + \
            [p for p in module.visual_encoder.cls_proj.parameters()]
        fused_ids = {id(p) for p in fusion}
        rest = [p for p in module.parameters() if id(p) not in fused_ids]
        self.opt = torch.optim.AdamW([{"params": rest, "lr": cfg.lr},
                                      {"params": fusion, "lr": cfg.fusion_lr}],
                                     weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler(device.split(":")[0], enabled=cfg.precision == "fp16"
                                           and device.startswith("cuda"))
        self.rng = np.random.default_rng(cfg.seed)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        self.order, self.cursor, self.step = self.rng.permutation(len(data)), 0, 0
        self.schedules = (_schedule(cfg.lr, cfg.warmup, cfg.steps),
                          _schedule(cfg.fusion_lr, cfg.warmup, cfg.steps))
        dtype = PRECISIONS[cfg.precision]
        self.autocast = torch.autocast(device.split(":")[0], dtype=dtype) \
            if dtype is not None else contextlib.nullcontext()

    def restore(self, state: dict) -> None:
        self.module.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.order, self.cursor = np.asarray(state["order"]), state["cursor"]
        self.step = state["step"]
        self.rng.bit_generator.state = state["numpy"]
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch"])  # dropout's draws
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])

    def snapshot(self) -> dict:
        return {"digest": self.cfg.digest(), "config": asdict(self.cfg), "step": self.step,
                "model": self.module.state_dict(), "optimizer": self.opt.state_dict(),
                "scaler": self.scaler.state_dict(), "order": self.order.tolist(),
                "cursor": self.cursor, "numpy": self.rng.bit_generator.state,
                "generator": self.generator.get_state(), "torch": torch.get_rng_state(),
                "cuda": (torch.cuda.get_rng_state_all() if self.device.startswith("cuda")
                         else None)}

    def advance(self) -> float:
        """One optimiser step over ``accumulate`` batches; returns its mean loss."""
        from datasets.segmentation_stream import batch_segmentation

        cfg, adapter = self.cfg, self.adapter
        for group, fn in zip(self.opt.param_groups, self.schedules):
            group["lr"] = fn(self.step)
        self.opt.zero_grad(set_to_none=True)
        total = 0.0
        for _ in range(cfg.accumulate):
            if self.cursor + cfg.batch_size > len(self.order):
                self.order, self.cursor = self.rng.permutation(len(self.data)), 0
            recs = [self.data[int(i)] for i in self.order[self.cursor:self.cursor + cfg.batch_size]]
            self.cursor += cfg.batch_size
            seg = batch_segmentation(recs, self.data, cfg.segmentation, adapter.grid[0], 133,
                                     cfg.seed)
            view = adapter.given(segmentation=None if seg is None else seg.to(self.device))
            images = adapter.preprocess([r.image for r in recs])
            with self.autocast:
                loss = itm_loss(view, images, [r.question for r in recs], self.generator)
            self.scaler.scale(loss / cfg.accumulate).backward()
            total += float(loss) / cfg.accumulate
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.module.parameters(), 1.0)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.step += 1
        return total


def finetune(cfg: FinetuneConfig, out: Path, weights_dir: Optional[str] = None,
             tokenizer_dir: Optional[str] = None, device: str = "cpu",
             checkpoint_every: int = 200, stop_after: Optional[int] = None,
             progress: bool = True) -> Path:
    """Run (or resume) the fine-tuning; returns the path of the result. ``stop_after`` ends the
    process after that many steps with the checkpoint written (as a kill would, cleanly).
    Records are read per batch: a VQA v2 train split's decoded images do not fit in memory."""
    from tqdm import tqdm

    data = _open_data(cfg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    last = out / LAST
    # a kill during a checkpoint's write leaves a partial copy (GBs at base size) beside it
    remove_stale_temporaries(out)
    state = torch.load(last, map_location="cpu", weights_only=False) if last.exists() else None
    if state is not None and state["digest"] != cfg.digest():
        raise InputError(f"{last} is a checkpoint of other fine-tuning settings; use another "
                         "--out or delete it")
    run = _Run(cfg, data, build(cfg, weights_dir, tokenizer_dir).to(device), device)
    if state is not None:
        run.restore(state)
    run.module.train()
    t0, first = time.time(), run.step
    with tqdm(total=cfg.steps, initial=run.step, disable=not progress, unit="step",
              desc="fine-tuning difnet-itm-base") as bar:
        while run.step < cfg.steps:
            loss = run.advance()
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}")
            if run.step % checkpoint_every == 0 or run.step in (cfg.steps, stop_after):
                snapshot = run.snapshot()
                write_atomic(last, lambda fh: torch.save(snapshot, fh))
            if stop_after is not None and stop_after <= run.step < cfg.steps:
                return last
    result = out / RESULT
    write_atomic(result, lambda fh: torch.save(run.module.eval().state_dict(), fh))
    write_atomic(out / "finetune.json", json.dumps(
        {**asdict(cfg), "steps_this_process": run.step - first,
         "seconds_this_process": round(time.time() - t0, 1)}, indent=2) + "\n")
    return result
