"""The embedded tiny models: shipped checkpoints, or trained on first use and cached."""
from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch

from benchmark.models import (CHECKPOINT_DIR, cache_dir, read_checkpoint_meta, register,
                              state_bytes, wrap)
from benchmark.models.protocol import VLModel
from benchmark.models.tensors import state_hash
from benchmark.core.errors import InputError
from benchmark.core.atomic import write_atomic
from benchmark.models.tiny import TinyConfig, build_tiny_itm, load_weights, preprocessing
from benchmark.training import TrainConfig, build_pool, evaluate, train
from datasets.synthetic import ANSWERS

#: name → (architecture, training recipe) of each embedded model
EMBEDDED: Dict[str, Tuple[TinyConfig, TrainConfig]] = {
    "blip-itm-tiny": (TinyConfig(), TrainConfig()),
    # DIFNet's fusion at layer Lf=1 with T=2 repeats; same data, steps, recipe and seed as the
    # baseline. To fit the same 60-minute CPU budget the ViT in front of the fusion has one block
    # (the visual stream still passes 1 + T + N - Lf = 4 layers, the baseline's ViT 3), N=2, a
    # 2x feed-forward and no dropout (the dropout masks alone cost a third of a step on CPU).
    "difnet-itm-tiny": (TinyConfig(fused=True, vit_depth=1,
                                   fusion={"Lf": 1, "T": 2, "N": 2, "h": 4, "d_ff": 192,
                                           "dropout": 0.0}), TrainConfig()),
}
#: The control pair: the same architectures, data, seeds and steps, trained without the losses
#: that read attention (word grounding) and without the evidence views of stage 2 (stage 2 still
#: runs, with random partial views only). Attention-reading methods are not favoured by
#: construction on these.
PLAIN = {"ground_weight": 0.0, "evidence_prob": 0.0}
EMBEDDED.update({f"{name}-plain": (cfg, replace(tcfg, **PLAIN))
                 for name, (cfg, tcfg) in list(EMBEDDED.items())})
#: training-seed replicates of the plain pair (the primary models): the same recipe, data pool
#: and steps; the seed sets the initialisation, the batch order, the negatives and the views
REPLICATE_SEEDS = (1, 2)
EMBEDDED.update({f"{name}-s{seed}": (cfg, replace(tcfg, seed=seed))
                 for name, (cfg, tcfg) in list(EMBEDDED.items()) if name.endswith("-plain")
                 for seed in REPLICATE_SEEDS})
#: the plain baseline at the fused model's ViT depth (one block): with difnet-itm-tiny-plain it
#: forms the pair that differs only in the fusion encoder (the shipped pair also differs in
#: ViT depth, 3 blocks against 1)
EMBEDDED["blip-itm-tiny-plain-vit1"] = (TinyConfig(vit_depth=1), replace(TrainConfig(), **PLAIN))
EVAL_QUESTIONS = 1000  # held-out test questions behind the recorded itm/vqa accuracy


def run_key(cfg: TinyConfig, tcfg: TrainConfig) -> str:
    """Cache key of a (config, recipe) pair: equal keys mean the same training run."""
    blob = json.dumps({"model": cfg.to_dict(), "train": asdict(tcfg)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def recipe_of(train_config: dict) -> str:
    """``plain`` for a recipe without the losses and views that read attention or evidence,
    else ``supervised``."""
    plain = all(train_config.get(k) == v for k, v in PLAIN.items())
    return "plain" if plain else "supervised"


def tiny_adapter(model, name: str, cfg: TinyConfig, info: dict) -> VLModel:
    """A tiny model (built by :func:`build_tiny_itm` from ``cfg``) behind the model protocol."""
    return wrap(model, name, (cfg.grid, cfg.grid), cfg.default_block, ANSWERS, info,
                preprocessing(cfg))


def _adapter(name: str, model, cfg: TinyConfig, meta: dict) -> VLModel:
    info = {k: meta.get(k) for k in ("itm_accuracy", "vqa_accuracy", "itm_by_family",
                                     "vqa_by_family", "train_seconds", "checkpoint", "sha256")}
    info.update(fingerprint=hashlib.sha256((meta["key"] + meta["state_hash"]).encode()).hexdigest(),
                config=cfg.to_dict(), train_config=meta.get("train_config"), key=meta["key"],
                recipe=recipe_of(meta.get("train_config") or {}))
    return tiny_adapter(model, name, cfg, info)


def train_embedded(name: str, cfg: TinyConfig, tcfg: TrainConfig, dest: Path,
                   progress: bool = True, stage1: Optional[Path] = None) -> dict:
    """Train, evaluate on the held-out test split, and write ``dest`` (.pt) + its ``.json``.

    ``stage1``: a checkpoint holding the weights after the recipe's first stage (same config and
    recipe); only the second stage then runs, and the recorded training time adds the first
    stage's time from that checkpoint's ``.json``.
    """
    import resource

    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = build_tiny_itm(cfg, seed=tcfg.seed)
    adapter = tiny_adapter(model, name, cfg, {})
    earlier = {}
    if stage1 is not None:
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
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "torch": torch.__version__, "trained_at": time.strftime("%Y-%m-%d")}
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(dest, data)
    write_atomic(dest.with_suffix(".json"), json.dumps(meta, indent=1, sort_keys=True))
    return meta


def load_embedded(name: str, model_overrides: Optional[dict] = None,
                  train_overrides: Optional[dict] = None, progress: bool = True) -> VLModel:
    """The shipped checkpoint when the config matches it, else a cached or freshly trained one.

    ``model_overrides`` / ``train_overrides`` replace fields of :class:`TinyConfig` /
    :class:`TrainConfig`; any change gives a new cache key (trained once, then reused).
    """
    cfg, tcfg = EMBEDDED[name]
    cfg = replace(cfg, **(model_overrides or {}))
    tcfg = replace(tcfg, **(train_overrides or {}))
    key = run_key(cfg, tcfg)
    shipped = read_checkpoint_meta(name)
    if shipped and shipped["key"] == key:
        path, meta = CHECKPOINT_DIR / shipped["checkpoint"], shipped
    else:
        path = cache_dir() / f"{name}-{key}.pt"
        json_path = path.with_suffix(".json")
        if not (path.exists() and json_path.exists()):
            print(f"{name}: no checkpoint for this configuration ({key}); training it once "
                  f"into {path}", file=sys.stderr)
            train_embedded(name, cfg, tcfg, path, progress=progress)
        meta = json.loads(json_path.read_text())
    model = build_tiny_itm(cfg, seed=tcfg.seed)
    load_weights(model, path, meta["sha256"])
    return _adapter(name, model, cfg, meta)


def untrained_default(name: str, model_overrides: Optional[dict] = None, **_) -> Optional[str]:
    """Why the default configuration of ``name`` cannot load without an hour of training, or None.

    A run never starts that training silently: without a shipped or cached checkpoint the model
    is skipped with this line. Non-default configurations (``model_overrides``) are trained on
    first use, as asked for.
    """
    if model_overrides:
        return None
    cfg, tcfg = EMBEDDED[name]
    key = run_key(cfg, tcfg)
    shipped = read_checkpoint_meta(name)
    if (shipped and shipped["key"] == key) or (cache_dir() / f"{name}-{key}.json").exists():
        return None
    return (f"no trained checkpoint for {name}: run `python -m benchmark train --model {name}` "
            "once (about an hour on 2 CPU cores; cached afterwards)")


for _name in EMBEDDED:
    register(_name, missing=lambda _n=_name, **kw: untrained_default(_n, **kw),
             in_all=EMBEDDED[_name][1].seed == 0)(lambda _n=_name, **kw: load_embedded(_n, **kw))


def load_untrained(name: str) -> VLModel:
    """The grounding control: ``name``'s architecture at its seeded initialisation, untrained."""
    cfg, tcfg = EMBEDDED[name]
    model = build_tiny_itm(cfg, seed=tcfg.seed)
    info = {"fingerprint": hashlib.sha256((run_key(cfg, tcfg) + state_hash(model)).encode()).hexdigest(),
            "config": cfg.to_dict(), "untrained": True, "recipe": "untrained"}
    return tiny_adapter(model, f"{name}@init", cfg, info)


for _name in ("blip-itm-tiny", "difnet-itm-tiny"):  # the plain twins share them
    register(f"{_name}@init")(lambda _n=_name, **_: load_untrained(_n))
