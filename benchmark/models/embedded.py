"""The embedded tiny models: each name's architecture, training recipe and seed, loaded from its
shipped checkpoint or from one ``python -m benchmark train`` wrote into the user cache.

Loading never trains and never reads the data generator: the checkpoint record carries the
vocabulary the model was trained on. A configuration with no checkpoint is
:class:`~benchmark.core.errors.MissingWeights`, naming the command that trains it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Optional, Tuple

from benchmark.core.errors import MissingWeights
from benchmark.models import CHECKPOINT_DIR, cache_dir, read_checkpoint_meta, register, wrap
from benchmark.models.protocol import VLModel
from benchmark.models.tensors import state_hash
from benchmark.models.tiny import (TinyConfig, Vocabulary, build_tiny_itm, load_weights,
                                   preprocessing)


@dataclass(frozen=True)
class EmbeddedSpec:
    """One embedded model: its architecture, its training recipe (``supervised``: with word
    grounding and evidence views; ``plain``: without either — ``benchmark/training/
    tiny_recipes.py`` turns the name into hyper-parameters) and its training seed."""

    config: TinyConfig
    recipe: str = "supervised"
    seed: int = 0


#: DIFNet's fusion at layer Lf=1 with T=2 repeats; to fit the baseline's 60-minute CPU budget the
#: ViT in front of the fusion has one block (the visual stream still passes 1 + T + N - Lf = 4
#: layers, the baseline's ViT 3), N=2, a 2x feed-forward and no dropout (the dropout masks alone
#: cost a third of a step on CPU)
_ARCHITECTURES = {
    "blip-itm-tiny": TinyConfig(),
    "difnet-itm-tiny": TinyConfig(fused=True, vit_depth=1,
                                  fusion={"Lf": 1, "T": 2, "N": 2, "h": 4, "d_ff": 192,
                                          "dropout": 0.0}),
}
#: name → spec of every embedded model: the supervised pair; the plain (control) pair, trained
#: without the losses that read attention, so attention-reading methods are not favoured by
#: construction; the plain pair's training-seed replicates; and the plain baseline at the fused
#: model's ViT depth (one block), which with difnet-itm-tiny-plain forms the pair that differs
#: only in the fusion encoder
EMBEDDED: Dict[str, EmbeddedSpec] = {name: EmbeddedSpec(cfg) for name, cfg in _ARCHITECTURES.items()}
EMBEDDED.update({f"{name}-plain": EmbeddedSpec(cfg, "plain") for name, cfg in _ARCHITECTURES.items()})
REPLICATE_SEEDS = (1, 2)
EMBEDDED.update({f"{name}-plain-s{seed}": EmbeddedSpec(cfg, "plain", seed)
                 for name, cfg in _ARCHITECTURES.items() for seed in REPLICATE_SEEDS})
EMBEDDED["blip-itm-tiny-plain-vit1"] = EmbeddedSpec(TinyConfig(vit_depth=1), "plain")


def config_of(name: str, model_overrides: Optional[dict] = None) -> TinyConfig:
    """``name``'s architecture with ``model_overrides`` (fields of :class:`TinyConfig`)."""
    return replace(EMBEDDED[name].config, **(model_overrides or {}))


def cached_checkpoint(name: str, cfg: TinyConfig) -> Path:
    """Where ``python -m benchmark train`` (without ``--ship``) writes ``name`` at ``cfg``."""
    return cache_dir() / f"{name}-{cfg.digest()}.pt"


def find_checkpoint(name: str, cfg: TinyConfig) -> Optional[Tuple[Path, dict]]:
    """The weights and record of ``name`` at ``cfg``: the shipped checkpoint when it has that
    architecture, else the user cache's; ``None`` when neither is on disk."""
    shipped = read_checkpoint_meta(name)
    if shipped and shipped["config"] == cfg.to_dict():
        return CHECKPOINT_DIR / shipped["checkpoint"], shipped
    path = cached_checkpoint(name, cfg)
    if path.is_file() and path.with_suffix(".json").is_file():
        return path, json.loads(path.with_suffix(".json").read_text())
    return None


def train_command(name: str, cfg: TinyConfig) -> str:
    """The command that trains ``name`` at ``cfg`` into the user cache."""
    fusion = ""
    if cfg.fusion != EMBEDDED[name].config.fusion:
        fusion = " --fusion " + ",".join(f"{k}={cfg.fusion[k]}" for k in ("Lf", "T", "N"))
    return f"python -m benchmark train --model {name}{fusion}"


def missing_embedded(name: str, model_overrides: Optional[dict] = None, **_) -> Optional[str]:
    """Why ``name`` (at ``model_overrides``) cannot load here, or ``None``."""
    cfg = config_of(name, model_overrides)
    if find_checkpoint(name, cfg):
        return None
    what = name if cfg == EMBEDDED[name].config else f"{name} with {model_overrides}"
    return (f"no trained checkpoint for {what}: run `{train_command(name, cfg)}` once (about an "
            f"hour on 2 CPU cores; written to {cache_dir()})")


def load_embedded(name: str, model_overrides: Optional[dict] = None, **_) -> VLModel:
    """``name`` at ``model_overrides`` from its checkpoint (sha256-checked)."""
    cfg = config_of(name, model_overrides)
    found = find_checkpoint(name, cfg)
    if found is None:
        raise MissingWeights(missing_embedded(name, model_overrides))
    path, meta = found
    vocab = Vocabulary.from_record(meta["vocabulary"])
    model = build_tiny_itm(cfg, vocab, EMBEDDED[name].seed)
    load_weights(model, path, meta["sha256"])
    info = {k: meta.get(k) for k in ("itm_accuracy", "vqa_accuracy", "itm_by_family",
                                     "vqa_by_family", "train_seconds", "checkpoint", "sha256")}
    info.update(fingerprint=hashlib.sha256((meta["key"] + meta["state_hash"]).encode()).hexdigest(),
                config=cfg.to_dict(), train_config=meta.get("train_config"), key=meta["key"],
                recipe=EMBEDDED[name].recipe)
    return tiny_adapter(model, name, cfg, vocab, info)


def tiny_adapter(model, name: str, cfg: TinyConfig, vocab: Vocabulary, info: dict) -> VLModel:
    """A tiny model (built by :func:`build_tiny_itm` from ``cfg``) behind the model protocol."""
    return wrap(model, name, (cfg.grid, cfg.grid), cfg.default_block, vocab.answers, info,
                preprocessing(cfg))


def load_untrained(name: str) -> VLModel:
    """The grounding control: ``name``'s architecture at its seeded initialisation, untrained
    (over the vocabulary of ``name``'s shipped checkpoint)."""
    spec, meta = EMBEDDED[name], read_checkpoint_meta(name)
    if meta is None:
        raise MissingWeights(f"{name}@init reads {name}'s vocabulary from its checkpoint record "
                             f"{CHECKPOINT_DIR / (name + '.json')}: restore it from the suite")
    vocab = Vocabulary.from_record(meta["vocabulary"])
    model = build_tiny_itm(spec.config, vocab, seed=spec.seed)
    info = {"fingerprint": hashlib.sha256((meta["key"] + state_hash(model)).encode()).hexdigest(),
            "config": spec.config.to_dict(), "untrained": True, "recipe": "untrained"}
    return tiny_adapter(model, f"{name}@init", spec.config, vocab, info)


for _name, _spec in EMBEDDED.items():
    register(_name, missing=lambda _n=_name, **kw: missing_embedded(_n, **kw),
             in_all=_spec.seed == 0)(lambda _n=_name, **kw: load_embedded(_n, **kw))
for _name in _ARCHITECTURES:  # the plain twins share them
    register(f"{_name}@init")(lambda _n=_name, **_: load_untrained(_n))
