"""Every pass a run makes, counted, against the passes its plan needs.

A run of both primary models with every method, the model-based metrics and the sanity checks
is made under :class:`benchmark.engine.passes.PassCounter` (forward: one image through a ViT; backward:
one image in ``torch.autograd.grad``). What the plan needs is computed here from the definitions
and the run's own rows, never from the counter:

- a map: one forward and one backward for the gradient methods, one forward for rollout, none
  for the baselines and brackets, and for Integrated Gradients the nodes of its path (its
  ``ig_passes`` rows), each a forward and a backward;
- deletion and insertion: the S − 1 inner points of the curve per scored question; the VQA
  metrics and PNP-VQA: no visual forward of their own (they read the shared tokens);
- shared, per model and question: the three whole-image probabilities of the curves' ends (for
  questions that match their image), the visual tokens and PNP-VQA's captioner tokens;
- per model: one forward per question (its answers) and one per re-rendered scene (Δ per
  object: the scene and the scene without each object);
- a sanity unit, per question: the maps each test explains, those of one input and weights
  once — the trained model's, one per randomisation stage, the rerun's seed, the other output's
  (methods with a target), the other question's, and 2 × ``n_noise`` noisy copies (sMPRT) —
  times the method's passes per map. Integrated Gradients' sanity maps have no fixed cost (its
  nodes adapt); their passes are printed, outside the ratio.

The meta-evaluation is off here (``meta=0``): it repeats the methods and metrics on perturbed
copies of the models, the same unit code whose passes this counts.

Run: python -m pytest tests/benchmarks/test_passes.py -m benchmark --benchmark-enable -s
(prints the ratio per label and over the run; asserts the run's ≤ 1.15).
"""
import csv
from collections import defaultdict

import pytest

from benchmark import models
from benchmark.engine.object_effects import can_rerender, object_masks
from benchmark.engine.passes import PassCounter
from datasets.loader_synthetic import SyntheticDataset

pytestmark = pytest.mark.benchmark
MODELS = ("blip-itm-tiny-plain", "difnet-itm-tiny-plain")
#: passes per map (forward, backward) of the methods with a fixed cost
PER_MAP = {"cross_attn_gradcam": (1, 1), "fused_gradcam": (1, 1), "chefer_relevance": (1, 1),
           "gradient_x_input": (1, 1), "rollout": (1, 0), "raw_attention": (1, 0)}
WITH_TARGET = {"cross_attn_gradcam", "fused_gradcam", "chefer_relevance", "gradient_x_input",
               "integrated_gradients"}
STEPS, QUESTIONS, SANITY, NOISE = 8, 16, 2, 50
METRICS = ("pointing_game,deletion_auc,insertion_auc,vqa_keep_auc,vqa_drop_auc,pnp_vqa_accuracy,"
           "object_faithfulness,sanity_mprt,random_logit,question_swap,smprt,emprt")


def _run(tmp_path):
    from benchmark.cli.main import main

    argv = ["--models", ",".join(MODELS), "--methods", "all", "--metrics", METRICS,
            "--limit", str(QUESTIONS), "--steps", str(STEPS), "--pnp-vqa", "pnp-vqa-tiny",
            "--pnp-captions", "4", "--plan-count", f"sanity={SANITY}", "--plan-count",
            "sanity.integrated_gradients=1", "--plan-count", "meta=0", "--quiet",
            "--no-report",
            "--out", str(tmp_path)]
    with PassCounter() as counter:
        assert main(argv) == 0
    return counter, list(csv.DictReader((tmp_path / "results.csv").open()))


def _maps_and_metrics(rows, need) -> None:
    for r in rows:
        label = f"{r['method']}/{r['metric']}"
        if r["metric"] == "pointing_game" and r["region"] == "target" and r["method"] in PER_MAP \
                and not r["note"].startswith("not applicable"):
            f, b = PER_MAP[r["method"]]
            need[f"{r['method']}/explain"][0] += f
            need[f"{r['method']}/explain"][1] += b
        elif r["metric"] == "ig_passes" and r["value"] != "":
            need["integrated_gradients/explain"][0] += int(float(r["value"]))
            need["integrated_gradients/explain"][1] += int(float(r["value"]))
        elif r["metric"] in ("deletion_auc", "insertion_auc") and r["value"] != "":
            need[label][0] += STEPS - 1


def _per_model(need) -> None:
    data = SyntheticDataset(split="test")
    recs = [data[i] for i in range(QUESTIONS)]
    matched = sum(r.extra.get("itm_label", 1) != 0 for r in recs)
    scenes = sum(1 + len(object_masks(r)) for r in recs if can_rerender(r))
    for _ in MODELS:
        need["model/predictions"][0] += QUESTIONS
        need["model/effects"][0] += scenes
        need["shared/ends"][0] += 3 * matched
        need["shared/tokens"][0] += QUESTIONS
        need["shared/encoded"][0] += QUESTIONS


def _sanity(need) -> None:
    for name in MODELS:
        stages = len(models.load(name).randomisation_stages())
        for method, (f, b) in PER_MAP.items():
            maps = SANITY * (1 + stages + 1 + (method in WITH_TARGET) + 1 + 2 * NOISE)
            need[f"{method}/sanity"][0] += f * maps
            need[f"{method}/sanity"][1] += b * maps


@pytest.mark.benchmark
def test_passes_made_against_passes_needed(tmp_path, ratio):
    counter, rows = _run(tmp_path)
    need = defaultdict(lambda: [0, 0])
    _maps_and_metrics(rows, need)
    _per_model(need)
    _sanity(need)
    made_total = need_total = 0
    print(f"\n{'label':<44}{'made F':>9}{'B':>8}{'needed F':>10}{'B':>8}{'ratio':>8}")
    for label in sorted(set(need) | set(counter.forward) | set(counter.backward)):
        made = (counter.forward.get(label, 0), counter.backward.get(label, 0))
        needed = tuple(need.get(label, (0, 0)))
        if label == "integrated_gradients/sanity":
            print(f"{label:<44}{made[0]:>9}{made[1]:>8}  (adaptive nodes: outside the ratio)")
            continue
        made_total, need_total = made_total + sum(made), need_total + sum(needed)
        share = sum(made) / sum(needed) if sum(needed) else float("inf") if sum(made) else 1.0
        print(f"{label:<44}{made[0]:>9}{made[1]:>8}{needed[0]:>10}{needed[1]:>8}{share:>8.3f}")
    ratio("passes made / passes the plan needs (whole run)", made_total / need_total, 1.15)
