"""Each embedded model's training run: its recipe as hyper-parameters, the training and the
checkpoint record the loader reads (``benchmark/models/embedded.py``)."""
from __future__ import annotations

import hashlib
import json
import resource
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional

import torch

from benchmark.core.atomic import write_atomic
from benchmark.core.errors import InputError
from benchmark.models import state_bytes
from benchmark.models.embedded import EMBEDDED, tiny_adapter
from benchmark.models.tensors import state_hash
from benchmark.models.tiny import TinyConfig, build_tiny_itm, load_weights
from benchmark.training.evaluation import evaluate
from benchmark.training.labels import VOCABULARY, build_pool
from benchmark.training.loop import train
from benchmark.training.recipe import TrainConfig

#: what each recipe name changes in :class:`TrainConfig`: ``plain`` drops the losses that read
#: attention (word grounding) and the evidence views of stage 2 (stage 2 still runs, with random
#: partial views only)
RECIPES = {"supervised": {}, "plain": {"ground_weight": 0.0, "evidence_prob": 0.0}}
EVAL_QUESTIONS = 1000  # held-out test questions behind the recorded itm/vqa accuracy


def train_config(name: str) -> TrainConfig:
    """The hyper-parameters embedded model ``name`` is trained with."""
    spec = EMBEDDED[name]
    return replace(TrainConfig(), **RECIPES[spec.recipe], seed=spec.seed)


def run_key(cfg: TinyConfig, tcfg: TrainConfig) -> str:
    """Digest of a (config, recipe) pair, recorded with the checkpoint: equal keys mean the same
    training run."""
    blob = json.dumps({"model": cfg.to_dict(), "train": asdict(tcfg)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _first_stage(stage1: Path, cfg: TinyConfig, tcfg: TrainConfig) -> dict:
    """The checked record of a first-stage checkpoint to continue from."""
    if not (stage1.is_file() and stage1.with_suffix(".json").is_file()):
        raise InputError(f"--stage1 {stage1}: needs the checkpoint and its .json beside it; "
                         "pass a checkpoint written by `python -m benchmark train`")
    first = json.loads(stage1.with_suffix(".json").read_text())
    differ = sorted(k for k, v in asdict(tcfg).items()
                    if not k.startswith("evidence_") and first["train_config"].get(k) != v)
    if first["config"] != cfg.to_dict() or differ:
        raise InputError(f"--stage1 {stage1}: trained with another config or first stage "
                         f"({', '.join(differ) or 'model config'}); pass that model's own "
                         "first-stage checkpoint, or train from scratch")
    if first["train_config"].get("evidence_steps"):
        raise InputError(f"--stage1 {stage1}: already includes the evidence-view stage; "
                         "pass a checkpoint trained with evidence_steps=0")
    return first


def train_embedded(name: str, cfg: TinyConfig, tcfg: TrainConfig, dest: Path,
                   progress: bool = True, stage1: Optional[Path] = None) -> dict:
    """Train, evaluate on the held-out test split, and write ``dest`` (.pt) + its ``.json``.

    ``stage1``: a checkpoint holding the weights after the recipe's first stage (same config and
    recipe); only the second stage then runs, and the recorded training time adds the first
    stage's time from that checkpoint's ``.json``.
    """
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = build_tiny_itm(cfg, VOCABULARY, seed=tcfg.seed)
    adapter = tiny_adapter(model, name, cfg, VOCABULARY, {})
    earlier = {}
    if stage1 is not None:
        first = _first_stage(stage1, cfg, tcfg)
        load_weights(model, stage1)
        earlier = {"stage1_sha256": hashlib.sha256(stage1.read_bytes()).hexdigest(),
                   "stage1_seconds": first["train_seconds"]}
    stats = train(adapter, cfg, tcfg, progress=progress, stages=(2,) if stage1 else (1, 2))
    if earlier:
        stats.update(earlier, stage2_seconds=stats["train_seconds"],
                     train_seconds=stats["train_seconds"] + earlier["stage1_seconds"])
    test = build_pool("test", EVAL_QUESTIONS, cfg, tcfg.data_seed, progress=progress)
    scores = evaluate(adapter, test)
    data = state_bytes(model)
    meta = {"name": name, "key": run_key(cfg, tcfg), "config": cfg.to_dict(),
            "train_config": asdict(tcfg), "sha256": hashlib.sha256(data).hexdigest(),
            "state_hash": state_hash(model), "checkpoint": dest.name, **stats, **scores,
            "vocabulary": VOCABULARY.to_record(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "torch": torch.__version__, "trained_at": time.strftime("%Y-%m-%d")}
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, data)
    write_atomic(dest.with_suffix(".json"), json.dumps(meta, indent=1, sort_keys=True))
    return meta
