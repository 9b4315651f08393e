"""What a run folder records to be reproduced and cited: the command, configuration, code
commit, package versions, machine, models' and pipeline's fingerprints, and the run's timings."""
from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Dict, Optional, Sequence

PACKAGES = ("torch", "torchvision", "salesforce-lavis", "transformers", "timm", "captum", "numpy",
            "scipy", "pandas", "scikit-image", "jinja2", "matplotlib")


def git_commit(repo: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def package_versions() -> Dict[str, str]:
    out = {}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = ""
    return out


def _pipeline_entry(config: dict) -> Optional[dict]:
    """The run's PNP-VQA pipeline: its name and the sha256 of its weights (``None`` when they
    are not on disk)."""
    if config.get("pnp_vqa") is None:
        return None
    from benchmark.models.pnp_pipelines import pipeline_fingerprint

    return {"name": config["pnp_vqa"], "sha256": pipeline_fingerprint(
        config["pnp_vqa"], config.get("weights_dir"), config.get("tokenizer_dir"))}


def manifest(config: dict, result, argv: Sequence[str]) -> dict:
    """Everything needed to reproduce and cite the run."""
    repo = Path(__file__).resolve().parents[2]
    return {
        "suite": "vqa-xai-bench",
        "command": ["python", "-m", "benchmark", *argv],
        "config": config,
        "seed": config.get("seed"),
        "git_commit": git_commit(repo),
        "packages": package_versions(),
        "python": platform.python_version(),
        "machine": {"platform": platform.platform(), "processor": platform.machine(),
                    "cpus": os.cpu_count()},
        "dataset": result.dataset_info,
        "models": {name: {"fingerprint": info.get("fingerprint"),
                          "itm_accuracy": info.get("itm_accuracy"),
                          "vqa_accuracy": info.get("vqa_accuracy"),
                          "itm_by_family": info.get("itm_by_family"),
                          "vqa_by_family": info.get("vqa_by_family"),
                          "checkpoint_sha256": info.get("sha256"),
                          "counterfactual": info.get("counterfactual"),
                          "segmentation": info.get("segmentation"),
                          "source": info.get("source"),
                          "images_per_forward": info.get("images_per_forward"),
                          "config": info.get("config"),
                          "recipe": info.get("recipe")}
                   for name, info in result.model_info.items()},
        "methods": result.method_info,
        "pnp_vqa": _pipeline_entry(config),
        "skipped_models": result.skipped,
        "nonfinite_maps": result.nonfinite_maps,
        "higher_is_better": result.higher_is_better,
        "diagnostics": sorted(result.diagnostics),
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "profile_s": {k: round(v, 3) for k, v in sorted(result.profile.items())},
    }
