"""Command line: ``python -m benchmark [run options] | train | evaluate | report | reproduce``.

Exit status: 0 success, 2 bad usage or bad input (one line on stderr), 1 internal error.
"""
from __future__ import annotations

import errno
import sys
import tempfile
import warnings
from pathlib import Path
from typing import List, Optional, Sequence

from benchmark.engine import plan
from benchmark.cli.args import parse_fusion, run_parser, with_shorthands
from benchmark.core.errors import UsageError
from benchmark.cli.runs import cmd_report, cmd_reproduce
from benchmark.cli.train import cmd_evaluate, cmd_train
from benchmark.core.errors import InputError
from benchmark.core.errors import UnknownNameError
from benchmark.engine.run_lock import run_folder_lock

#: the sanity checks' questions per method when neither --sanity-samples nor the plan says
SANITY_SAMPLES = 50


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write-test-"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write to --out {out}: {e.strerror or e}; choose a writable "
                         "folder") from None


def _list(weights_dir: Optional[str] = None, tokenizer_dir: Optional[str] = None) -> None:
    import datasets
    import methods
    import metrics
    from benchmark import models
    from benchmark.models.pnp_pipelines import PIPELINES, missing_pipeline

    files = {"weights_dir": weights_dir, "tokenizer_dir": tokenizer_dir}
    for title, names in (("models", models.available()), ("methods", methods.available()),
                         ("metrics", metrics.available()), ("datasets", datasets.available()),
                         ("pnp-vqa pipelines (--pnp-vqa)", list(PIPELINES))):
        print(f"{title}:")
        for n in names:
            note, options = "", ()
            if title == "models":
                reason = None if ":" in n else models.missing(
                    n, **{k: v for k, v in files.items() if v and k in models.reads(n)})
                note = "  (weights not on disk)" if reason else ""
                options = models.get(n.split(":")[0]).options
            elif title.startswith("pnp-vqa"):
                note = "  (not on disk)" if missing_pipeline(n, **files) else ""
            else:
                plugin = {"methods": methods, "metrics": metrics, "datasets": datasets}[title].get(n)
                role = getattr(plugin, "role", "method")
                note = f"  ({role})" if role in ("baseline", "bracket", "exploratory") else ""
                options = plugin.options
            print(f"  {n}{note}" + "".join(f"\n      {o.name}={o.default}: {o.help}"
                                           for o in options))


def _parameters(dataset: str) -> dict:
    """The parameters of the dataset's constructor (its options)."""
    import inspect

    import datasets

    return dict(inspect.signature(datasets.get(dataset)).parameters)


def _default_split(dataset: str) -> str:
    """The dataset's own default split (``split=`` of its constructor), e.g. val for vqav2."""
    param = _parameters(dataset).get("split")
    return param.default if param is not None and isinstance(param.default, str) else "test"


def default_pipeline(requested: Optional[str], dataset: str) -> Optional[str]:
    """``--pnp-vqa``: as given (``none``: no pipeline); by default the embedded pipeline on the
    synthetic data it was trained on, none elsewhere."""
    if requested is None:
        return "pnp-vqa-tiny" if dataset == "synthetic" else None
    return None if requested == "none" else requested


def _resolve_models(spec: str) -> List[str]:
    from benchmark import models

    return models.resolve(spec)


def default_workers(device: str) -> int:
    """``--workers`` when not given: ``$VQA_XAI_BENCH_WORKERS``, else on the CPU one one-thread
    process per core up to 2 (1.23× faster than one process with two threads on the primary
    pair; docs/quickstart.md, "Both cores"), and on a GPU one process."""
    import os

    if os.environ.get("VQA_XAI_BENCH_WORKERS"):
        return int(os.environ["VQA_XAI_BENCH_WORKERS"])
    if not str(device).startswith("cpu"):
        return 1
    return max(1, min(2, len(os.sched_getaffinity(0))))


def cmd_run(argv: Sequence[str]) -> int:
    import reports
    from benchmark.engine import outputs, runner
    from benchmark.engine.logs import run_log
    from reports import html

    args = run_parser().parse_args(argv)
    if args.list:
        _list(args.weights_dir, args.tokenizer_dir)
        return 0
    cfg = run_config(args)
    args.workers = args.workers or default_workers(cfg.device)
    if args.plan:
        print(plan.describe(cfg, args.workers))
        return 0
    out = Path(args.out)
    _check_writable(out)
    with run_folder_lock(out, f"python -m benchmark {' '.join(argv)}"), run_log(out) as log:
        log(f"python -m benchmark {' '.join(argv)}", echo=False)
        threads = None
        if args.engine == "ray":
            from benchmark.engine import ray_engine

            ray_engine.compute_on_ray(cfg, out, address=args.address,
                                      actors_per_model=args.ray_actors, progress=not args.quiet)
        elif args.workers > 1:
            from benchmark.engine import pool_engine

            pool_engine.compute_in_processes(cfg, out, args.workers, progress=not args.quiet)
            threads = 1
        # the local engine computes what is missing; after another engine, it only merges
        result = runner.run(cfg, out=out, progress=not args.quiet and args.engine == "local"
                            and args.workers <= 1, log=log, threads=threads)
        paths = outputs.write_run(out, cfg.to_dict(), result, argv)
        html.save_gallery(out, result.gallery)
        if not args.no_report:
            paths.update(reports.write_reports(out))
        log(f"wrote {len(paths)} files in {out} ({result.timings['total_s']:.1f}s)", echo=False)
    print(f"results in {out}: {', '.join(sorted(p.name for p in paths.values()))}")
    return 0


def run_config(args):
    """The run configuration of parsed ``run`` arguments, checked: names resolved, the device
    resolved, the engine available, at least one model runnable (else :class:`UsageError`)."""
    import datasets
    import methods
    import metrics
    from benchmark import models
    from benchmark.engine import config
    from benchmark.engine.units import missing_models

    cfg = config.RunConfig(models=_resolve_models(args.models),
                           methods=methods.REGISTRY.resolve(args.methods),
                           metrics=dataset_metrics(args.metrics, args.dataset),
                           dataset=args.dataset, split=args.split or _default_split(args.dataset),
                           data_root=args.data_root, region=args.region,
                           limit=args.limit, seed=args.seed, device=args.device,
                           precision=args.precision,
                           batch_size=args.batch_size, tolerance=args.tolerance,
                           segmentation=args.segmentation,
                           substrate=args.substrate, insertion_start=args.insertion_start,
                           side_inputs=args.side_inputs,
                           sanity_samples=args.sanity_samples or SANITY_SAMPLES,
                           fusion=parse_fusion(args.fusion),
                           vqa_mode=args.vqa_mode,
                           method_options=methods.parse_options(args.method_option),
                           metric_options=metrics.parse_options(args.metric_option),
                           model_options=models.parse_options(args.model_option),
                           dataset_options=datasets.parse_options(args.dataset,
                                                                  args.dataset_option),
                           pnp_vqa=default_pipeline(args.pnp_vqa, args.dataset),
                           max_batch_images=args.max_batch_images,
                           memory_budget_gb=args.memory_budget_gb,
                           weights_dir=args.weights_dir, tokenizer_dir=args.tokenizer_dir)
    cfg.metric_options = with_shorthands(args, cfg.metrics, cfg.metric_options)
    counts = plan.parse_counts(args.plan_count)
    if args.sanity_samples:
        counts.setdefault(plan.SANITY, args.sanity_samples)
    cfg.plan = plan.resolve(cfg.methods, cfg.metrics, cfg.sanity_samples, counts,
                            full=args.full).to_dict()
    _check_names(cfg)
    cfg.device = resolve_device(args.device)
    if args.engine == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UsageError("--engine ray needs Ray: pip install -e '.[ray]'")
    elif args.address or args.ray_actors:
        raise UsageError("--address and --ray-actors apply to --engine ray only")
    reasons = list(missing_models(cfg).values())
    if all(reasons):
        raise UsageError("no requested model can run here: " + "; ".join(reasons))
    return cfg


def _check_names(cfg) -> None:
    """Usage errors for settings that name what the run does not have."""
    if cfg.region is not None and "region" not in _parameters(cfg.dataset):
        raise UsageError(f"--region applies to datasets with several region types (clevrxai), "
                         f"not {cfg.dataset}")
    for family, asked, run in (("method", cfg.method_options, cfg.methods),
                               ("metric", cfg.metric_options, cfg.metrics),
                               ("model", cfg.model_options,
                                cfg.models + [m.partition(":")[0] for m in cfg.models])):
        stray = sorted(set(asked) - set(run))
        if stray:
            raise UsageError(f"--{family}-option for {', '.join(stray)}, which --{family}s does "
                             "not run")
    if cfg.pnp_vqa is not None:
        from benchmark.models.pnp_pipelines import PIPELINES

        if cfg.pnp_vqa not in PIPELINES:
            raise UsageError(f"unknown --pnp-vqa {cfg.pnp_vqa!r}; use one of "
                             f"{', '.join(PIPELINES)}")


def dataset_metrics(spec: str, dataset: str) -> List[str]:
    """The metrics ``spec`` names; ``all`` takes a reference metric only where ``dataset``
    provides its reference, and naming one that it does not provide is a usage error."""
    import datasets
    import metrics
    from metrics.base import MetricKind

    names = metrics.REGISTRY.resolve(spec)
    provides = set(datasets.get(dataset).references)
    lacking = [m for m in names if metrics.get(m).kind is MetricKind.REFERENCE
               and metrics.get(m).reference not in provides]
    if lacking and spec.strip() != "all":
        where = [d for d in datasets.available()
                 if metrics.get(lacking[0]).reference in datasets.get(d).references]
        raise UsageError(f"metric {lacking[0]} needs a reference that dataset {dataset} does not "
                         f"provide; use it with --dataset {' or '.join(where) or '(none)'}")
    return [m for m in names if m not in lacking]


def resolve_device(requested: str) -> str:
    """``auto`` → ``cuda`` when torch sees a GPU, else ``cpu``; ``cuda`` without one is a usage
    error."""
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda requested but torch sees no CUDA device; use --device cpu")
    return requested


COMMANDS = {"train": cmd_train, "report": cmd_report, "reproduce": cmd_reproduce,
            "evaluate": cmd_evaluate}  # in benchmark/cli/train.py and benchmark/cli/runs.py


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
