"""The optimisation loop: AdamW, linear warm-up then cosine decay, gradient clipping, fixed
seeds and steps; the recipe's two stages."""
from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from benchmark.models.protocol import VLModel
from benchmark.models.tiny import TinyConfig
from benchmark.training.labels import Pool, build_pool
from benchmark.training.recipe import TrainConfig, batch_losses


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
    desc = f"training {adapter.name}" + ("" if main else " (evidence views)"
                                         if tcfg.evidence_prob else " (stage 2)")
    # closed however the loop ends, so that an interruption's message starts its own line
    with tqdm(range(steps), disable=not progress, unit="step", desc=desc) as bar:
        for step in bar:
            if cursor + tcfg.batch_size > len(order):
                order, cursor = rng.permutation(len(pool.questions)), 0
            idx = order[cursor:cursor + tcfg.batch_size]
            cursor += tcfg.batch_size
            p_hard = min(1.0, tcfg.hard_start + (1 - tcfg.hard_start) * step / max(1, tcfg.hard_ramp * steps)) \
                if main else 1.0
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            losses = batch_losses(adapter, pool, idx, rng, p_hard, tcfg, seg_source,
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
