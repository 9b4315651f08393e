import os
import warnings

import pytest
import torch

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)
torch.set_num_threads(min(2, os.cpu_count() or 1))
# the suite's runs compute in-process (the CLI's subprocesses inherit it); tests of the worker
# processes pass --workers themselves
os.environ.setdefault("VQA_XAI_BENCH_WORKERS", "1")


@pytest.fixture(scope="session")
def untrained_tiny():
    """An untrained embedded-architecture model (fast; for shape/plumbing tests)."""
    from benchmark.models.embedded import tiny_adapter
    from benchmark.models.tiny import TinyConfig, Vocabulary, build_tiny_itm
    from datasets.synthetic import vocabulary

    cfg, vocab = TinyConfig(), Vocabulary.from_record(vocabulary())
    model = build_tiny_itm(cfg, vocab, seed=0).eval()
    return tiny_adapter(model, "untrained-tiny", cfg, vocab, {"fingerprint": "untrained"})


@pytest.fixture(scope="session")
def trained_tiny():
    from benchmark import models

    return models.load("blip-itm-tiny")


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VQA_XAI_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


RATIOS = pytest.StashKey[list]()


@pytest.fixture
def ratio(request):
    """``ratio(name, value, limit)``: record a performance ratio (printed at the end of the
    session) and assert ``value <= limit`` when benchmarks are enabled (``--benchmark-enable``;
    ``limit=None``: reported only): the default run times on whatever else the machine is
    doing, so there it only reports."""
    def record(name: str, value: float, limit=None) -> None:
        request.config.stash.setdefault(RATIOS, []).append((name, value, limit))
        # --benchmark-enable and the --benchmark-disable of addopts are two options: either
        # the first is given or the second is absent
        enabled = request.config.getoption("benchmark_enable", False) or \
            not request.config.getoption("benchmark_disable", False)
        if limit is not None and enabled:
            assert value <= limit, f"{name} = {value:.3f} > {limit}"
    return record


def pytest_terminal_summary(terminalreporter, config):
    rows = config.stash.get(RATIOS, [])
    if rows:
        terminalreporter.section("performance ratios (ours / plain reference, same run)")
        for name, value, limit in rows:
            promise = f"(promised <= {limit:.3g})" if limit is not None else "(reported)"
            terminalreporter.write_line(f"{name:<58} {value:7.3f}  {promise}")


@pytest.fixture(scope="session")
def layering_run(tmp_path_factory):
    """One run of every registered method and metric on the fused primary model (one question,
    the report written), in a fresh interpreter that records every import it executes:
    ``(edges, run folder)``. The layering test and the every-plugin smoke test share it; the
    golden test pins the numbers of both models on a fixed list."""
    from tests.fixtures.cli_helpers import SMALL_METRIC_BUDGETS
    from tests.fixtures.import_graph import recorded_edges

    out = tmp_path_factory.mktemp("every-plugin") / "run"
    # the smallest budget wherever a plugin's cost has a knob: it checks that each runs, not
    # what it scores (IG's nodes: on the cascades' randomised models it never converges)
    argv = ["--models", "difnet-itm-tiny-plain", "--methods", "all", "--metrics", "all",
            "--limit", "1", "--batch-size", "1", "--steps", "2", "--sanity-samples", "1",
            "--pnp-captions", "2", "--method-option", "integrated_gradients.max_steps=16",
            "--metric-option", "smprt.n_noise=2", *SMALL_METRIC_BUDGETS,
            "--full", "--quiet", "--out", str(out)]
    edges = recorded_edges(f"from benchmark.cli.main import main\nassert main({argv!r}) == 0\n")
    return edges, out
