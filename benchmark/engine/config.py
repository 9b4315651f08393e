"""The run configuration: everything that determines a run's numbers, and its digest."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import datasets


@dataclass
class RunConfig:
    """Everything that determines a run's numbers (written to the manifest)."""

    models: List[str]
    methods: List[str]
    metrics: List[str]
    dataset: str = "synthetic"
    split: str = "test"
    data_root: Optional[str] = None
    region: Optional[str] = None  # ground-truth region type, for datasets with several (clevrxai)
    limit: Optional[int] = None
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"  # fp32 | bf16 | fp16: autocast of the model's passes
    batch_size: int = 16
    tolerance: Optional[float] = None  # pointing game; None → scaled from TorchRay's 15 px @ 224
    gallery: int = 12
    segmentation: str = "exact"  # fused models' stream: exact | none | shuffled | npy:DIR
    substrate: str = "zero"  # deletion: what replaces removed patches (zero | mean | blur)
    #: a removed patch's side inputs (a fused model's segmentation): "consistent" (they show
    #: what the substrate shows: background) or "fixed" (the unperturbed image's)
    side_inputs: str = "consistent"
    insertion_start: Optional[str] = None  # insertion's start (blur | zero | mean); None: dataset's
    sanity_samples: int = 50
    vqa_mode: str = "tokens"  # tokens (PNP-VQA's) | pixels (dropped patches replaced first)
    fusion: Dict[str, int] = field(default_factory=dict)  # MultiLevelEncoder overrides (Lf, T, N)
    #: declared plugin options (``--method-option`` ...): plugin → option → value; the
    #: dataset's: option → value
    method_options: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    metric_options: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    model_options: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    dataset_options: Dict[str, Any] = field(default_factory=dict)
    pnp_vqa: Optional[str] = None  # PNP-VQA captioner + answerer (benchmark.models.pnp_vqa_pipeline)
    max_batch_images: Optional[int] = None  # images per forward; None: from memory_budget_gb
    memory_budget_gb: float = 8.0  # what one forward and backward may hold (benchmark.models.memory)
    weights_dir: Optional[str] = None  # pretrained checkpoints (None: $TORCH_HOME/hub/checkpoints)
    tokenizer_dir: Optional[str] = None  # BERT tokenizer folder (None: the Hugging Face cache)
    #: the run plan's counts (:mod:`benchmark.engine.plan`): {"maps": {method: n}, "metrics": {metric:
    #: n}, "sanity": {method: n}}, None meaning every question; empty: every question, and the
    #: sanity checks on ``sanity_samples``
    plan: Dict[str, Dict[str, Optional[int]]] = field(default_factory=dict)

    def run_plan(self):
        """The :class:`benchmark.engine.plan.RunPlan` of this configuration."""
        from benchmark.engine.plan import RunPlan

        if not self.plan:
            return RunPlan(sanity={m: self.sanity_samples for m in self.methods})
        return RunPlan(**self.plan)

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        d = self.to_dict()
        d.pop("device")  # same numbers on any device are not promised, but the cache is shared
        # where the files are is not what they are: the model's fingerprint (its weights' hash)
        # is checked against the run folder's instead
        d.pop("weights_dir")
        d.pop("tokenizer_dir")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def pipeline_fingerprint(self) -> Optional[str]:
        """What the run's PNP-VQA pipeline answers with (its weights' sha256; ``"absent"``
        when its files are not on disk), kept with the run folder like the models'
        fingerprints; ``None`` when the run names no pipeline."""
        if self.pnp_vqa is None:
            return None
        from benchmark.models.pnp_pipelines import pipeline_fingerprint

        return pipeline_fingerprint(self.pnp_vqa, self.weights_dir, self.tokenizer_dir) \
            or "absent"


def load_dataset(cfg: RunConfig):
    options = {"split": cfg.split, "seed": cfg.seed}
    if cfg.data_root:
        options["data_root"] = cfg.data_root
    if cfg.region:
        options["region"] = cfg.region
    return datasets.get(cfg.dataset)(**options, **cfg.dataset_options)
