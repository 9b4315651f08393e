"""Command line: ``python -m benchmark [run options] | train | evaluate | report | reproduce``.

Exit status: 0 success, 2 bad usage or bad input (one line on stderr), 1 internal error.
"""
from __future__ import annotations

import argparse
import errno
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

from benchmark.errors import InputError
from benchmark.registry import UnknownNameError

EPILOG = """\
examples:
  python -m benchmark --models all                    every runnable model, method and metric
  python -m benchmark --list                          what is registered
  python -m benchmark --models blip-itm-tiny --methods cross_attn_gradcam,random --limit 200
  python -m benchmark train --model blip-itm-tiny     re-train an embedded model
  python -m benchmark evaluate                        held-out accuracy per family (exact vs
                                                      shuffled segmentation for fused models)
  python -m benchmark report runs/latest              re-render the report from a run folder
  python -m benchmark reproduce runs/latest/manifest.json   rerun and compare the bytes

A run writes results.csv, summary.csv, curves.csv, comparisons.csv, sanity.csv,
manifest.json, index.html, tables.tex and run.log into --out; cache/ there lets a
killed run resume (run the same command again).
Exit status: 0 success, 2 bad usage or input, 1 internal error.
"""


class UsageError(Exception):
    """Bad usage or bad input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def run_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m benchmark", epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Explainability benchmark for BLIP-ITM / PNP-VQA heatmaps: runs "
                            "attribution methods on models and scores them.")
    p.add_argument("--models", default="all",
                   help="comma-separated model names or 'all' (every model whose weights are on "
                        "disk; the others are skipped with one line each; models that take a "
                        "folder, e.g. hf-blip-itm:PATH, are named explicitly). Default: all")
    p.add_argument("--methods", default="all", help="comma-separated method names or 'all'")
    p.add_argument("--metrics", default="all", help="comma-separated metric names or 'all'")
    p.add_argument("--dataset", default="synthetic", help="dataset name (default: synthetic)")
    p.add_argument("--split", default=None,
                   help="dataset split (default: the dataset's own: test for synthetic, val for "
                        "vqav2)")
    p.add_argument("--data-root", default=None, help="folder of a file-based dataset")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="use only the first N questions")
    p.add_argument("--out", default="runs/latest", help="run folder (default: runs/latest)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, baselines and bootstrap")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--batch-size", type=_positive_int, default=16)
    p.add_argument("--tolerance", type=float, default=None,
                   help="pointing-game tolerance in px (default: 15 px scaled from 224 px)")
    p.add_argument("--segmentation", default="exact",
                   help="fused models' segmentation stream: exact (the dataset's semantic map), "
                        "degraded:RATE (that map as an imperfect segmenter's: each object's class "
                        "wrong with probability RATE, outlines off by one pixel), "
                        "none (zeros), shuffled (another image's map) or npy:DIR (one "
                        "<sample_id>.npy (C, h, w) map per question). Default: exact")
    p.add_argument("--fusion", default=None, metavar="Lf=1,T=2,N=2",
                   help="MultiLevelEncoder settings for the embedded fused model (ablations); a "
                        "setting without a shipped checkpoint is trained once and cached")
    p.add_argument("--steps", type=_positive_int, default=16,
                   help="deletion/insertion steps S (S+1 points; capped at the patch count)")
    p.add_argument("--substrate", default="zero", choices=("zero", "mean", "blur"),
                   help="deletion: what replaces removed patches (default: zeros in normalised "
                        "space)")
    p.add_argument("--insertion-start", default=None, choices=("blur", "zero", "mean"),
                   help="insertion: the image patches are inserted into (default: the dataset's "
                        "— RISE's blur, σ = 5 px at 224 px scaled to the image, for real data; "
                        "the mean image for synthetic, whose flat-coloured objects survive the "
                        "blur)")
    p.add_argument("--vqa-grid", default="log", choices=("log", "linear"),
                   help="vqa_keep_auc / vqa_drop_auc: the fractions of patches read, shared by "
                        "both — log (default: ten steps in equal ratios from PNP-VQA's 20/576 to "
                        "1) or linear (Chefer et al.'s 10%% steps)")
    p.add_argument("--vqa-mode", default="tokens", choices=("tokens", "pixels"),
                   help="vqa_keep/drop/pnp: tokens (default, PNP-VQA's use: the answerer reads "
                        "only the chosen patch tokens of the full image) or pixels (the other "
                        "patches are also replaced by the deletion substrate before encoding, so "
                        "nothing leaks through the ViT's self-attention)")
    p.add_argument("--sanity-samples", type=_positive_int, default=50,
                   help="questions used by the sanity metrics (sanity_mprt, random_logit, smprt, "
                        "emprt; cascading randomisation is costly). Default: 50")
    p.add_argument("--method-option", action="append", default=[], metavar="METHOD.OPTION=VALUE",
                   help="set a method's option, e.g. integrated_gradients.baseline=zero "
                        "(repeatable; --list shows every method's options and defaults)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--list", action="store_true", help="list registered names (with each "
                   "method's options) and exit")
    return p


def train_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m benchmark train",
                description="(Re)train an embedded model on the synthetic train split and "
                            "evaluate it on the held-out test split.")
    p.add_argument("--model", required=True, help="embedded model name, e.g. blip-itm-tiny")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help="optimiser steps (default: the shipped recipe's)")
    p.add_argument("--ship", action="store_true",
                   help="write into the package's checkpoints/ (what ships with the suite) "
                        "instead of the user cache")
    p.add_argument("--threads", type=_positive_int, default=None, help="torch CPU threads")
    p.add_argument("--stage1", type=Path, default=None, metavar="CKPT",
                   help="continue from a checkpoint of the recipe's first stage (same config; "
                        "its .json beside it) and run only the second, evidence-view stage")
    p.add_argument("--quiet", action="store_true")
    return p


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write to --out {out}: {e.strerror or e}; choose a writable "
                         "folder") from None


def _list() -> None:
    import datasets
    import methods
    import metrics
    from benchmark import models

    for title, names in (("models", models.available()), ("methods", methods.available()),
                         ("metrics", metrics.available()), ("datasets", datasets.available())):
        print(f"{title}:")
        for n in names:
            note = ""
            if title == "models":
                reason = None if ":" in n else models.missing(n)
                note = "  (weights not on disk)" if reason else ""
            elif title == "methods":
                m = methods.get(n)
                note = "".join(f"\n      {o.name}={o.default}: {o.help}" for o in m.options)
                note = ("  (baseline)" if m.is_baseline else "") + note
            print(f"  {n}{note}")


def _default_split(dataset: str) -> str:
    """The dataset's own default split (``split=`` of its constructor), e.g. val for vqav2."""
    import inspect

    import datasets

    param = inspect.signature(datasets.get(dataset)).parameters.get("split")
    return param.default if param is not None and isinstance(param.default, str) else "test"


def _resolve_models(spec: str) -> List[str]:
    from benchmark import models

    return models.resolve(spec)


def cmd_run(argv: Sequence[str]) -> int:
    import datasets
    import methods
    import metrics
    import reports
    from benchmark import config, outputs, runner
    from benchmark.logs import run_log
    from reports import html

    args = run_parser().parse_args(argv)
    if args.list:
        _list()
        return 0
    cfg = config.RunConfig(models=_resolve_models(args.models),
                           methods=methods.REGISTRY.resolve(args.methods),
                           metrics=metrics.REGISTRY.resolve(args.metrics),
                           dataset=args.dataset, split=args.split or _default_split(args.dataset),
                           data_root=args.data_root,
                           limit=args.limit, seed=args.seed, device=args.device,
                           batch_size=args.batch_size, tolerance=args.tolerance,
                           segmentation=args.segmentation, perturbation_steps=args.steps,
                           substrate=args.substrate, insertion_start=args.insertion_start,
                           sanity_samples=args.sanity_samples, fusion=_fusion(args.fusion),
                           vqa_grid=args.vqa_grid, vqa_mode=args.vqa_mode,
                           method_options=methods.parse_options(args.method_option))
    stray = sorted(set(cfg.method_options) - set(cfg.methods))
    if stray:
        raise UsageError(f"--method-option for {', '.join(stray)}, which --methods does not run")
    datasets.get(cfg.dataset)
    if cfg.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda requested but torch sees no CUDA device; use --device cpu")
    from benchmark import models

    reasons = [models.missing(m, **runner._model_options(m, cfg)) for m in cfg.models]
    if all(reasons):
        raise UsageError("no requested model can run here: " + "; ".join(reasons))
    out = Path(args.out)
    _check_writable(out)
    with run_log(out) as log:
        log(f"python -m benchmark {' '.join(argv)}", echo=False)
        result = runner.run(cfg, out=out, progress=not args.quiet, log=log)
        paths = outputs.write_run(out, cfg.to_dict(), result, argv)
        html.save_gallery(out, result.gallery)
        paths.update(reports.write_reports(out))
        log(f"wrote {len(paths)} files in {out} ({result.timings['total_s']:.1f}s)", echo=False)
    print(f"results in {out}: {', '.join(sorted(p.name for p in paths.values()))}")
    return 0


def _fusion(spec: Optional[str]) -> dict:
    """``"Lf=1,T=2,N=3"`` → ``{"Lf": 1, "T": 2, "N": 3}``."""
    if not spec:
        return {}
    out = {}
    for part in spec.split(","):
        key, _, value = part.partition("=")
        if key.strip() not in ("Lf", "T", "N") or not value.strip().isdigit():
            raise UsageError(f"--fusion expects Lf=INT,T=INT,N=INT, got {spec!r}")
        out[key.strip()] = int(value)
    if out.get("Lf", 1) >= out.get("N", 3):
        raise UsageError(f"--fusion needs Lf < N, got {spec!r}")
    return out


def _without_out(argv: Sequence[str]) -> List[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--out":
            skip = True
        elif not a.startswith("--out="):
            out.append(a)
    return out


def cmd_reproduce(argv: Sequence[str]) -> int:
    p = _Parser(prog="python -m benchmark reproduce",
                description="Re-run the command recorded in a run's manifest.json into a new "
                            "folder and say whether results.csv and summary.csv are identical "
                            "bytes (exit 0) or differ (exit 3).")
    p.add_argument("manifest", help="RUN_DIR/manifest.json")
    p.add_argument("--out", default=None, help="folder for the rerun (default: RUN_DIR/reproduce)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    path = Path(args.manifest)
    try:
        manifest = json.loads(path.read_text())
        command = manifest["command"][3:]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UsageError(f"cannot read a run command from {path}: {e}") from None
    original = path.parent
    out = Path(args.out) if args.out else original / "reproduce"
    rerun = _without_out(command) + ["--out", str(out)] + (["--quiet"] if args.quiet else [])
    code = cmd_run(rerun)
    if code:
        return code
    from benchmark.outputs import differing_files

    differ = differing_files(original, out, ("results.csv", "summary.csv"))
    if manifest.get("git_commit") and manifest["git_commit"] != outputs_git_commit():
        print(f"note: the run was made at commit {manifest['git_commit'][:12]}, this is "
              f"{outputs_git_commit()[:12]}", file=sys.stderr)
    if differ:
        print(f"bytes differ: {', '.join(differ)} ({original} vs {out})")
        return 3
    print(f"identical bytes: results.csv and summary.csv of {original} and {out}")
    return 0


def outputs_git_commit() -> str:
    from benchmark.outputs import git_commit

    return git_commit(Path(__file__).resolve().parent.parent)


def cmd_report(argv: Sequence[str]) -> int:
    p = _Parser(prog="python -m benchmark report",
                description="Re-render index.html and tables.tex from a run folder's CSVs and "
                            "manifest, without recomputing anything.")
    p.add_argument("run_dir", help="a run folder written by python -m benchmark")
    args = p.parse_args(argv)
    out = Path(args.run_dir)
    for name in ("summary.csv", "manifest.json"):
        if not (out / name).exists():
            raise UsageError(f"{out / name} not found: is {out} a run folder?")
    import reports

    paths = reports.write_reports(out)
    print(f"re-rendered {', '.join(str(p) for p in paths.values())}")
    return 0


def cmd_train(argv: Sequence[str]) -> int:
    import torch

    from benchmark.models import CHECKPOINT_DIR, cache_dir, embedded

    args = train_parser().parse_args(argv)
    if args.model not in embedded.EMBEDDED:
        raise UsageError(f"cannot train {args.model!r}: embedded models are "
                         f"{', '.join(embedded.EMBEDDED)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg, tcfg = embedded.EMBEDDED[args.model]
    if args.steps:
        from dataclasses import replace

        tcfg = replace(tcfg, steps=args.steps)
    key = embedded.run_key(cfg, tcfg)
    dest = (CHECKPOINT_DIR / f"{args.model}.pt") if args.ship else \
        cache_dir() / f"{args.model}-{key}.pt"
    meta = embedded.train_embedded(args.model, cfg, tcfg, dest, progress=not args.quiet,
                                   stage1=args.stage1)
    print(f"{args.model}: itm_accuracy={meta['itm_accuracy']:.3f} "
          f"vqa_accuracy={meta['vqa_accuracy']:.3f} in {meta['train_seconds']:.0f}s -> {dest}")
    return 0


def cmd_evaluate(argv: Sequence[str]) -> int:
    from benchmark.heldout import SOURCES, by_family, heldout_table
    from benchmark.models import embedded

    p = _Parser(prog="python -m benchmark evaluate",
                description="Held-out ITM and VQA accuracy of embedded models per question "
                            "family on the synthetic test split (the questions the checkpoints "
                            "record), for fused models with each segmentation source.")
    p.add_argument("--models", default="all",
                   help="comma-separated embedded model names, or all (default)")
    p.add_argument("--segmentation", default="exact,shuffled",
                   help=f"comma-separated sources for fused models, of {', '.join(SOURCES)} "
                        "(default: exact,shuffled)")
    p.add_argument("--questions", type=_positive_int, default=embedded.EVAL_QUESTIONS,
                   help=f"test questions (default: {embedded.EVAL_QUESTIONS}, as recorded)")
    p.add_argument("--out", default=None, help="also write the table to this CSV file")
    p.add_argument("--quiet", action="store_true")
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
        from benchmark.outputs import write_atomic

        write_atomic(Path(args.out), table.to_csv(index=False, float_format="%.4f"))
    return 0


COMMANDS = {"train": cmd_train, "report": cmd_report, "reproduce": cmd_reproduce,
            "evaluate": cmd_evaluate}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # LAVIS's dependencies warn on import about their own deprecated torch calls; nothing a user
    # of this command can act on, and it buries the one-line errors this command promises
    for module in ("torch.jit", "fairscale"):
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    command = COMMANDS.get(argv[0]) if argv else None
    try:
        return command(argv[1:]) if command else cmd_run(argv)
    except (UsageError, UnknownNameError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; results computed so far are kept (run the same command to resume)",
              file=sys.stderr)
        return 130
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
            print(f"error: cannot write {e.filename or 'the run folder'}: {e.strerror}; free space "
                  "or choose another --out (results computed so far are kept; run the same "
                  "command again to resume)", file=sys.stderr)
            return 2
        raise
