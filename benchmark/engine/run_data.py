"""What every unit of a run reads besides its model (:class:`RunData`): the configuration, the
dataset's records and their batches, the answer scorer, each image's pointing tolerance, the run
plan and each question's place in its seeded order."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List

from benchmark.engine import batch_inputs as inputs
from benchmark.engine.config import RunConfig, load_dataset
from benchmark.core.errors import ExcludedSample, InputError, MissingImage
from benchmark.engine.plan import RunPlan, question_ranks
from metrics.vqa import exact_match, vqa_accuracy


@dataclass
class RunData:
    """The run's inputs: the configuration (with the dataset's insertion start filled in), the
    records, their batches, the answer scorer, each image's pointing tolerance, the dataset's
    manifest entry, the excluded samples, the dataset's reference rows, the run plan and the
    rank of every record in the plan's seeded order."""

    cfg: RunConfig
    records: list
    batches: List[List[int]]
    scorer: Callable
    tolerance: Dict[str, float]  # sample id → pointing tolerance in px at its image's size
    dataset_info: dict
    #: samples that cannot be scored (image file missing, empty question): id → (question
    #: family, note); they get rows with an empty value and the note instead of entering any unit
    excluded: Dict[str, tuple] = field(default_factory=dict)
    #: the dataset's own reference rows for the run's metrics (e.g. inter-human agreement)
    reference_rows: List[dict] = field(default_factory=list)
    plan: RunPlan = field(default_factory=RunPlan)
    ranks: List[int] = field(default_factory=list)  # per record: its place in the plan's order

    def maps_in(self, method: str, b: int) -> int:
        """How many questions of batch ``b`` the method explains under the plan (the progress
        bars count maps)."""
        count = self.plan.count(method)
        return sum(1 for i in self.batches[b] if count is None or self.ranks[i] < count)

    def sanity_records(self, method: str) -> list:
        """The records the sanity checks of ``method`` run on: the first of the plan's order
        (its sanity count), in the dataset's order."""
        count = self.plan.sanity.get(method)
        return [r for r, k in zip(self.records, self.ranks) if count is None or k < count]


def _records(data, n: int, cfg: RunConfig) -> tuple:
    """(records, excluded, reasons) of the first ``n`` samples, and the one-line error when none
    can be scored."""
    records, excluded, reasons, example = [], {}, Counter(), None
    for i in range(n):
        try:
            records.append(data[i])
        except ExcludedSample as e:
            excluded[e.sample_id] = (e.family, e.note)
            reasons[e.reason] += 1
            example = example or e
    if not records and set(reasons) == {MissingImage.reason}:
        raise InputError(f"every image of the run's {n} questions is missing, e.g. {example}")
    if not records and excluded:
        raise InputError(f"none of the run's {n} questions can be scored "
                         f"({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))}), "
                         f"e.g. {example}")
    if not records:
        raise InputError(f"dataset {cfg.dataset!r} has no samples")
    return records, excluded, reasons


def load_run_data(cfg: RunConfig) -> RunData:
    """Load the dataset of ``cfg`` and fix what the units share."""
    data = load_dataset(cfg)
    n = len(data) if cfg.limit is None else min(cfg.limit, len(data))
    records, excluded, reasons = _records(data, n, cfg)
    if cfg.insertion_start is None:
        cfg = replace(cfg, insertion_start=data.insertion_start)
    # per image: a dataset may scale the tolerance with the image's side
    tolerance = {r.sample_id: float(cfg.tolerance) if cfg.tolerance is not None else
                 float(data.pointing_tolerance(min(r.image.shape[:2]))) for r in records}
    sides = sorted({min(r.image.shape[:2]) for r in records})
    values = sorted(set(tolerance.values()))
    info = {**data.describe(), "n_used": n, "fingerprint": data.fingerprint(records, excluded),
            "images_missing": reasons[MissingImage.reason],
            "excluded": dict(sorted(reasons.items())), "insertion_start": cfg.insertion_start,
            "answer_scoring": "exact match" if data.exact_match else "VQA accuracy",
            "pointing_tolerance_px": values[0] if len(values) == 1 else
            {"min": values[0], "max": values[-1], "per": "image"},
            "image_size": sides[0] if len(sides) == 1 else {"min": sides[0], "max": sides[-1]}}
    return RunData(cfg, records, inputs.batches(len(records), cfg.batch_size),
                   exact_match if data.exact_match else vqa_accuracy, tolerance, info, excluded,
                   [r for r in data.reference_rows(records) if r["metric"] in cfg.metrics],
                   cfg.run_plan(), question_ranks(len(records), cfg.seed).tolist())


def unit_key(b: int) -> str:
    """The cache name of batch ``b`` (under the model's and the method's folders)."""
    return f"batch-{b:05d}"
