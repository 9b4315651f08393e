"""The command line's arguments: one parser per command, each option with its help, and the
checks that need nothing but the arguments. Commands live in :mod:`benchmark.cli.main`."""
from __future__ import annotations

import argparse
from typing import Any, Dict, List, Optional, Sequence

from benchmark.core.errors import UsageError
from benchmark.engine import plan

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
stability.csv, agreement.csv, tokens.csv, modality.csv, meta.csv, manifest.json,
index.html, tables.tex and run.log into --out; cache/ there lets a killed run resume
(run the same command again).
Exit status: 0 success, 2 bad usage or input, 1 internal error.
"""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        raise UsageError(f"{self.prog}: {message} (see --help)")


#: flags that set one declared option on every metric of the run that declares it (the flag's
#: ``dest`` → the option's name): short forms of ``--metric-option`` for the settings most runs
#: change; a new metric that declares such an option is covered without touching the CLI
METRIC_SHORTHANDS = {"steps": "steps", "vqa_grid": "grid", "pnp_captions": "captions"}


def with_shorthands(args: argparse.Namespace, names: Sequence[str],
                    options: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """``options`` (metric → option → value) with each shorthand flag given set on every metric
    of ``names`` that declares its option; an explicit ``--metric-option`` wins."""
    import metrics

    out = {name: dict(values) for name, values in options.items()}
    for dest, option in METRIC_SHORTHANDS.items():
        value = getattr(args, dest)
        for name in names if value is not None else ():
            declared = {o.name: o for o in metrics.get(name).options}
            if option in declared:
                out.setdefault(name, {}).setdefault(option, declared[option].check(value))
    return out


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def run_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m benchmark", epilog=EPILOG,
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
                        "vqav2, gqa and vqahat, simple for clevrxai)")
    p.add_argument("--data-root", default=None, help="folder of a file-based dataset")
    p.add_argument("--region", default=None,
                   help="ground-truth region type, for datasets that give several: clevrxai "
                        "--split simple: single_object (default) | all_objects; --split "
                        "complex: unique (default) | unique_firstnonempty | union | all_objects")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use only the first N questions")
    p.add_argument("--out", default="runs/latest", help="run folder (default: runs/latest)")
    p.add_argument("--seed", type=int, default=0, help="seed for data, baselines and bootstrap")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                   help="where models run: auto (CUDA when torch sees a GPU, else the CPU; the "
                        "default), cpu or cuda. A run folder keeps the device of its first run")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="the model's passes in fp32 (default) or under torch.autocast in bf16 or "
                        "fp16 (faster on GPUs; docs/cli.md states how far each metric moves)")
    _engine_arguments(p)
    _metric_arguments(p)
    p.add_argument("--method-option", action="append", default=[], metavar="METHOD.OPTION=VALUE",
                   help="set a method's option, e.g. integrated_gradients.baseline=zero "
                        "(repeatable; --list shows every method's options and defaults)")
    for family, shape in (("metric", "METRIC.OPTION=VALUE"), ("model", "MODEL.OPTION=VALUE"),
                          ("dataset", "OPTION=VALUE")):
        p.add_argument(f"--{family}-option", action="append", default=[], metavar=shape,
                       help=f"set an option the {family} declares (repeatable; --list shows "
                            "them); recorded in the manifest and the cache digest")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--no-report", action="store_true",
                   help="write the CSVs and manifest only, not index.html, tables.tex and the "
                        "figures (a minute or more of matplotlib on a large run); render them "
                        "later with: python -m benchmark report RUN_DIR")
    p.add_argument("--list", action="store_true", help="list registered names (with each "
                   "method's options) and exit")
    plan.add_arguments(p)
    return p


def _engine_arguments(p) -> None:
    """Where and how the units run: engine, processes, batches, memory, weights."""
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="where units run: local (this process, the default) or ray (tasks on a "
                        "Ray cluster, same bytes; pip install -e '.[ray]'); either resumes the "
                        "other's run folder")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="with --engine local: compute the units in this many processes of one "
                        "torch thread each (1: in this process, with torch's default threads); "
                        "default: one per CPU core up to 2 ($VQA_XAI_BENCH_WORKERS overrides), "
                        "1 on a GPU; a run folder resumes with the same choice")
    p.add_argument("--address", default=None,
                   help="with --engine ray: the cluster to join (e.g. ray://head:10001 or auto); "
                        "default: start a local one")
    p.add_argument("--ray-actors", type=positive_int, default=None,
                   help="with --engine ray: actors per model, each loading the model once "
                        "(default: the cluster's CPUs, or GPUs with --device cuda, shared "
                        "between the models)")
    p.add_argument("--batch-size", type=positive_int, default=16,
                   help="questions per unit of work (default: 16); a unit's passes are split "
                        "further by --max-batch-images")
    p.add_argument("--pnp-vqa", default=None, metavar="NAME",
                   help="pnp_vqa_accuracy's captioner and answerer: pnp-vqa-tiny (embedded, "
                        "trained on the synthetic scenes; the default on --dataset synthetic), "
                        "pnp-vqa-base, pnp-vqa-large or pnp-vqa-3b (PNP-VQA's BLIP large "
                        "caption checkpoint and UnifiedQA-v2 T5 base/large/3B, from "
                        "--weights-dir or the caches), or none; without one that metric is "
                        "not applicable")
    p.add_argument("--pnp-captions", type=positive_int, default=None, metavar="N",
                   help="shorthand for the option captions of every metric of the run that "
                        "declares it: pnp_vqa_accuracy's captions per question and curve point "
                        "(default: 20; PNP-VQA uses 100: about four times the cost, measured at "
                        "full size)")
    p.add_argument("--max-batch-images", type=positive_int, default=None, metavar="N",
                   help="the most images one forward takes (a method's maps, IG's path points, "
                        "a curve's images, sanity explains); default: what --memory-budget-gb "
                        "holds for the model. Part of the configuration: batch sizes move "
                        "floating-point sums in their last bits")
    p.add_argument("--memory-budget-gb", type=positive_float, default=8.0, metavar="GB",
                   help="without --max-batch-images: the memory one forward and backward may "
                        "hold, per model, estimated from its architecture (default: 8; ViT-L at "
                        "384 px: 3.5 GB per image, ViT-B: 1.4 GB)")
    p.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="folder of pretrained checkpoints (LAVIS's file names, e.g. "
                        "model_base_retrieval_coco.pth); default: $TORCH_HOME/hub/checkpoints")
    p.add_argument("--tokenizer-dir", default=None, metavar="DIR",
                   help="folder of the BERT tokenizer (bert-base-uncased's vocab.txt) for the "
                        "pretrained BLIP models; default: the Hugging Face cache, offline")


def _metric_arguments(p) -> None:
    """The metrics' settings: pointing tolerance, segmentation stream, curves, sanity."""
    p.add_argument("--tolerance", type=float, default=None,
                   help="pointing-game tolerance in px (default: 15 px scaled from 224 px)")
    p.add_argument("--segmentation", default="exact",
                   help="fused models' segmentation stream: exact (the dataset's semantic map), "
                        "degraded:RATE (that map as an imperfect segmenter's: each object's class "
                        "wrong with probability RATE, outlines off by one pixel), "
                        "none (zeros), shuffled (another image's map), npy:DIR (one "
                        "<sample_id>.npy (C, h, w) map per question) or panoptic:PATH (COCO's "
                        "panoptic_<split>2017.json with its PNG folder beside it, or the folder "
                        "holding those of several splits; COCO image ids: vqav2, vqahat). "
                        "Default: exact")
    p.add_argument("--fusion", default=None, metavar="Lf=1,T=2,N=2",
                   help="MultiLevelEncoder settings for the embedded fused model (ablations); a "
                        "setting without a shipped checkpoint needs `python -m benchmark train "
                        "--model difnet-itm-tiny --fusion ...` once (the run says so)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="shorthand for the option steps of every metric of the run that "
                        "declares it: deletion/insertion steps S (default: 16; S+1 points; "
                        "capped at the patch count)")
    p.add_argument("--substrate", default="zero", choices=("zero", "mean", "blur"),
                   help="deletion: what replaces removed patches (default: zeros in normalised "
                        "space)")
    p.add_argument("--side-inputs", default="consistent", choices=("consistent", "fixed"),
                   help="deletion, insertion and --vqa-mode pixels on a fused model: a patch "
                        "whose pixels show the substrate also reads background in the "
                        "segmentation stream (consistent, default: every input the perturbed "
                        "pixels determine changes with them) or keeps the unperturbed image's "
                        "stream (fixed: the object stays visible to the fusion encoder)")
    p.add_argument("--insertion-start", default=None, choices=("blur", "zero", "mean"),
                   help="insertion: the image patches are inserted into (default: the dataset's "
                        "— RISE's blur, σ = 5 px at 224 px scaled to the image, for real data; "
                        "the mean image for synthetic, whose flat-coloured objects survive the "
                        "blur)")
    p.add_argument("--vqa-grid", default=None, choices=("log", "linear"),
                   help="shorthand for the option grid of every metric of the run that declares "
                        "it: vqa_keep_auc / vqa_drop_auc's fractions of patches read — log "
                        "(default: ten steps in equal ratios from PNP-VQA's 20/576 to 1) or "
                        "linear (Chefer et al.'s 10%% steps)")
    p.add_argument("--vqa-mode", default="tokens", choices=("tokens", "pixels"),
                   help="vqa_keep/drop/pnp: tokens (default, PNP-VQA's use: the answerer reads "
                        "only the chosen patch tokens of the full image) or pixels (the other "
                        "patches are also replaced by the deletion substrate before encoding, so "
                        "nothing leaks through the ViT's self-attention)")
    p.add_argument("--sanity-samples", type=positive_int, default=None,
                   help="questions of the sanity metrics (sanity_mprt, random_logit, "
                        "question_swap, smprt, emprt), the plan's default for every method; "
                        "the same as --plan-count sanity=N")


def reproduce_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m benchmark reproduce",
               description="Re-run the command recorded in a run's manifest.json into a new "
                           "folder and say whether results.csv and summary.csv are identical "
                           "bytes (exit 0) or differ (exit 3).")
    p.add_argument("manifest", help="RUN_DIR/manifest.json")
    p.add_argument("--out", default=None, help="folder for the rerun (default: RUN_DIR/reproduce)")
    p.add_argument("--quiet", action="store_true")
    return p


def report_parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m benchmark report",
               description="Re-render index.html and tables.tex from a run folder's CSVs and "
                           "manifest, without recomputing anything.")
    p.add_argument("run_dir", help="a run folder written by python -m benchmark")
    return p


def parse_fusion(spec: Optional[str]) -> dict:
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


def without_out(argv: Sequence[str]) -> List[str]:
    """A recorded command line without its ``--out`` (``reproduce`` writes elsewhere)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--out":
            skip = True
        elif not a.startswith("--out="):
            out.append(a)
    return out
