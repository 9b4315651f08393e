"""The whole run against the model's own passes: a run's wall time over the time it spends inside
the model's forward passes (any ``nn.Module`` call, outermost only) and ``torch.autograd.grad``
(the backward passes of every gradient method and of captum), measured in the same run.
Everything else — data, tie orders, metric arithmetic, caching, the CSVs — is the harness's."""
import contextlib
import time

import pytest
import torch
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from benchmark.engine import runner
from benchmark.cli.main import run_config
from benchmark.cli.args import run_parser

pytestmark = pytest.mark.benchmark
METRICS = ["--metrics", "pointing_game_above_chance,relevance_rank,deletion_auc,insertion_auc,"
           "vqa_keep_auc,vqa_drop_auc,object_faithfulness,counterfactual_pointing,random_logit,"
           "sanity_mprt"]
#: the promised ratio on a run of some size (every method, both trained models), and a small
#: run for the default test session, where loading and writing weigh more (reported only)
RUNS = {"full": (["--models", "blip-itm-tiny,difnet-itm-tiny", "--limit", "16", "--batch-size",
                  "8", "--sanity-samples", "4"] + METRICS, 1.15),
        "small": (["--models", "blip-itm-tiny", "--methods",
                   "random,cross_attn_gradcam,gradient_x_input,rollout", "--limit", "4",
                   "--batch-size", "4", "--sanity-samples", "2"] + METRICS, None)}


class ModelClock:
    """Seconds spent inside outermost module calls and in ``torch.autograd.grad``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._depth = 0
        self._t0 = 0.0

    def _enter(self, *_) -> None:
        if self._depth == 0:
            self._t0 = time.perf_counter()
        self._depth += 1

    def _leave(self, *_) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.seconds += time.perf_counter() - self._t0

    @contextlib.contextmanager
    def running(self, monkeypatch):
        grad = torch.autograd.grad

        def timed_grad(*args, **kwargs):
            self._enter()
            try:
                return grad(*args, **kwargs)
            finally:
                self._leave()

        monkeypatch.setattr(torch.autograd, "grad", timed_grad)
        pre = register_module_forward_pre_hook(self._enter)
        post = register_module_forward_hook(self._leave)
        try:
            yield self
        finally:
            pre.remove()
            post.remove()


@pytest.mark.parametrize("size", [pytest.param("small", marks=pytest.mark.ratio_check), "full"])
def test_whole_run_vs_the_models_own_passes(tmp_path, monkeypatch, benchmark, ratio, size):
    argv, limit = RUNS[size]
    cfg = run_config(run_parser().parse_args(argv))
    runner.run(cfg, tmp_path / "warm", progress=False)  # loads and caches the models
    clock = ModelClock()
    with clock.running(monkeypatch):
        t0 = time.perf_counter()
        runner.run(cfg, tmp_path / "run", progress=False)
        total = time.perf_counter() - t0
    benchmark.extra_info.update(run_s=total, model_s=clock.seconds)
    ratio(f"whole run ({size}) / the model's forward and backward passes",
          total / clock.seconds, limit)
