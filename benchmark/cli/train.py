"""``python -m benchmark train`` and ``python -m benchmark evaluate``: the embedded models'
training and held-out evaluation, PNP-VQA's rebuild, and difnet-itm-base's fine-tuning."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from benchmark.cli.args import Parser, parse_fusion, positive_float, positive_int
from benchmark.core.errors import UsageError
from benchmark.engine.run_lock import run_folder_lock


def train_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m benchmark train",
               description="(Re)train an embedded model on the synthetic train split and "
                           "evaluate it on the held-out test split; or, with --model "
                           "difnet-itm-base, fine-tune BLIP-ITM base with DIFNet's "
                           "MultiLevelEncoder on a dataset (e.g. --dataset vqav2 --data-root "
                           "DIR), resumable, writing OUT/difnet_itm_base.pth.")
    p.add_argument("--model", required=True,
                   help="embedded model name (e.g. blip-itm-tiny), pnp-vqa-tiny (rebuilds the "
                        "shipped embedded PNP-VQA: tokenizers, captioner, answerer) or "
                        "difnet-itm-base")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="optimiser steps (default: the shipped recipe's; pnp-vqa-tiny: of "
                        "each of its two models; fine-tuning: 10000)")
    _finetune_arguments(p.add_argument_group("fine-tuning difnet-itm-base"))
    p.add_argument("--ship", action="store_true",
                   help="write into the package's checkpoints/ (what ships with the suite) "
                        "instead of the user cache (pnp-vqa-tiny always writes there; not for "
                        "difnet-itm-base, which writes into --out)")
    p.add_argument("--fusion", type=parse_fusion, default=None, metavar="Lf=INT,T=INT,N=INT",
                   help="a fused embedded model with other fusion settings (written to the user "
                        "cache, where a run with the same --fusion finds it)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--answerer-only", action="store_true",
                   help="pnp-vqa-tiny: retrain the answerer alone beside the shipped captioner "
                        "and tokenizers, recording the held-out accuracy before and after")
    p.add_argument("--stage1", type=Path, default=None, metavar="CKPT",
                   help="continue from a checkpoint of the recipe's first stage (same config; "
                        "its .json beside it) and run only the second, evidence-view stage")
    p.add_argument("--quiet", action="store_true")
    return p


def _finetune_arguments(tune) -> None:
    tune.add_argument("--dataset", default="vqav2", help="training data (default: vqav2)")
    tune.add_argument("--data-root", default=None, help="the dataset's folder")
    tune.add_argument("--split", default="train", help="training split (default: train)")
    tune.add_argument("--segmentation", default="exact",
                      help="the segmentation stream: exact (the dataset's maps), npy:DIR "
                           "(DIFNet-layout (C, h, w) maps, one <sample_id>.npy each) or "
                           "panoptic:PATH (COCO panoptic_<split>2017.json + its PNGs, or their folder)")
    tune.add_argument("--batch-size", type=positive_int, default=32,
                      help="matched pairs per batch (each adds two hard negatives)")
    tune.add_argument("--accumulate", type=positive_int, default=1,
                      help="batches per optimiser step (gradient accumulation)")
    tune.add_argument("--lr", type=positive_float, default=1e-5, help="BLIP's learning rate")
    tune.add_argument("--fusion-lr", type=positive_float, default=1e-4,
                      help="the new MultiLevelEncoder's learning rate")
    tune.add_argument("--warmup", type=int, default=500, help="warm-up steps")
    tune.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                      help="autocast of the passes (fp16 with a gradient scaler on CUDA)")
    tune.add_argument("--checkpoint-every", type=positive_int, default=200,
                      help="steps between resumable checkpoints (OUT/finetune-last.pt)")
    tune.add_argument("--out", default="runs/finetune", help="output folder")
    tune.add_argument("--weights-dir", default=None,
                      help="folder with model_base_retrieval_coco.pth (default: "
                           "$TORCH_HOME/hub/checkpoints)")
    tune.add_argument("--tokenizer-dir", default=None, help="bert-base-uncased's tokenizer folder")
    tune.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    tune.add_argument("--vit-depth", type=positive_int, default=None,
                      help="keep only the first N ViT blocks (a reduced model for smoke tests)")
    tune.add_argument("--text-layers", type=positive_int, default=None,
                      help="keep only the first N text layers (smoke tests)")
    tune.add_argument("--stop-after", type=positive_int, default=None,
                      help="stop after N steps with the checkpoint written (a rerun resumes)")


def evaluate_parser() -> argparse.ArgumentParser:
    from benchmark.training.heldout import SOURCES
    from benchmark.training.tiny_recipes import EVAL_QUESTIONS

    p = Parser(prog="python -m benchmark evaluate",
               description="Held-out ITM and VQA accuracy of embedded models per question "
                           "family on the synthetic test split (the questions the checkpoints "
                           "record), for fused models with each segmentation source.")
    p.add_argument("--models", default="all",
                   help="comma-separated embedded model names, or all (default)")
    p.add_argument("--segmentation", default="exact,shuffled",
                   help=f"comma-separated sources for fused models, of {', '.join(SOURCES)} "
                        "(default: exact,shuffled)")
    p.add_argument("--questions", type=positive_int, default=EVAL_QUESTIONS,
                   help=f"test questions (default: {EVAL_QUESTIONS}, as recorded)")
    p.add_argument("--out", default=None, help="also write the table to this CSV file")
    p.add_argument("--quiet", action="store_true")
    return p


def cmd_train(argv: Sequence[str]) -> int:
    import torch

    from benchmark.models import CHECKPOINT_DIR, embedded
    from benchmark.training.tiny_recipes import train_config, train_embedded

    args = train_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model == "difnet-itm-base":
        if args.ship or args.stage1:
            raise UsageError("--ship and --stage1 are for the embedded models; fine-tuning "
                             "difnet-itm-base writes into --out and resumes from it")
        return _finetune(args)
    if args.answerer_only and args.model != "pnp-vqa-tiny":
        raise UsageError("--answerer-only retrains the embedded PNP-VQA's answerer: use it "
                         "with --model pnp-vqa-tiny")
    if args.model == "pnp-vqa-tiny":
        if args.stage1:
            raise UsageError("--stage1 is the ITM recipe's second stage; pnp-vqa-tiny has none")
        return _train_pnp_tiny(args)
    if args.model not in embedded.EMBEDDED:
        raise UsageError(f"cannot train {args.model!r}: embedded models are "
                         f"{', '.join(embedded.EMBEDDED)}, pnp-vqa-tiny")
    cfg, tcfg = embedded.config_of(args.model), train_config(args.model)
    if args.fusion:
        if not cfg.fused or args.ship:
            raise UsageError("--fusion sets the fusion encoder of a fused embedded model "
                             "(difnet-itm-tiny...) trained into the user cache, without --ship")
        cfg = embedded.config_of(args.model, {"fusion": {**cfg.fusion, **args.fusion}})
    if args.steps:
        from dataclasses import replace

        tcfg = replace(tcfg, steps=args.steps)
    dest = (CHECKPOINT_DIR / f"{args.model}.pt") if args.ship else \
        embedded.cached_checkpoint(args.model, cfg)
    meta = train_embedded(args.model, cfg, tcfg, dest, progress=not args.quiet,
                          stage1=args.stage1)
    print(f"{args.model}: itm_accuracy={meta['itm_accuracy']:.3f} "
          f"vqa_accuracy={meta['vqa_accuracy']:.3f} in {meta['train_seconds']:.0f}s -> {dest}")
    return 0


def _train_pnp_tiny(args) -> int:
    from dataclasses import replace

    from benchmark.models import CHECKPOINT_DIR
    from benchmark.training.pnp_train import PnpTrainConfig, train_pnp_tiny

    tcfg = PnpTrainConfig()
    if args.steps:
        tcfg = replace(tcfg, caption_steps=args.steps, answer_steps=args.steps)
    dest = CHECKPOINT_DIR / "pnp-vqa-tiny.pt"
    meta = train_pnp_tiny(dest, tcfg, progress=not args.quiet, answerer_only=args.answerer_only)
    before = meta.get("before", {})
    print("pnp-vqa-tiny: " + ", ".join(
        f"{k}={meta[k]:.3f}" + (f" (before {before[k]:.3f})" if k in before else "")
        for k in ("caption_accuracy", "answer_accuracy", "pipeline_accuracy"))
        + f" in {meta['train_seconds']:.0f}s -> {dest}")
    return 0


def _finetune(args) -> int:
    from benchmark.cli.main import resolve_device
    from benchmark.training.finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(dataset=args.dataset, data_root=args.data_root, split=args.split,
                         segmentation=args.segmentation, steps=args.steps or 10000,
                         batch_size=args.batch_size, accumulate=args.accumulate, lr=args.lr,
                         fusion_lr=args.fusion_lr, warmup=args.warmup, precision=args.precision,
                         vit_depth=args.vit_depth, text_layers=args.text_layers)
    with run_folder_lock(Path(args.out), "python -m benchmark train --model difnet-itm-base"):
        path = finetune(cfg, Path(args.out), args.weights_dir, args.tokenizer_dir,
                        resolve_device(args.device), args.checkpoint_every, args.stop_after,
                        progress=not args.quiet)
    print(f"difnet-itm-base: {'checkpoint' if path.name.endswith('last.pt') else 'weights'} "
          f"-> {path}")
    return 0


def cmd_evaluate(argv: Sequence[str]) -> int:
    from benchmark.training.heldout import SOURCES, by_family, heldout_table
    from benchmark.models import embedded

    p = evaluate_parser()
    args = p.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    sources = [s.strip() for s in args.segmentation.split(",") if s.strip()]
    for n in names:
        if n not in embedded.EMBEDDED and n != "all":
            raise UsageError(f"cannot evaluate {n!r}: embedded models are "
                             f"{', '.join(embedded.EMBEDDED)}")
    for s in sources:
        if s not in SOURCES:
            raise UsageError(f"unknown segmentation source {s!r}; use {', '.join(SOURCES)}")
    if names == ["all"]:  # every embedded model that has a checkpoint; the others say why not
        from benchmark import models

        missing = {n: models.missing(n) for n in embedded.EMBEDDED}
        for n, why in missing.items():
            if why:
                print(f"skipping {n}: {why}", file=sys.stderr)
        names = [n for n, why in missing.items() if not why]
    table = heldout_table(names, sources, args.questions, progress=not args.quiet)
    print(by_family(table).round(3).to_string())
    if args.out:
        from benchmark.core.atomic import write_atomic

        write_atomic(Path(args.out), table.to_csv(index=False, float_format="%.4f"))
    return 0
