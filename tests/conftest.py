import os
import warnings

import pytest
import torch

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning)
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def untrained_tiny():
    """An untrained embedded-architecture model (fast; for shape/plumbing tests)."""
    from benchmark.models.embedded import tiny_adapter
    from benchmark.models.tiny import TinyConfig, build_tiny_itm

    cfg = TinyConfig()
    model = build_tiny_itm(cfg, seed=0).eval()
    return tiny_adapter(model, "untrained-tiny", cfg, {"fingerprint": "untrained"})


@pytest.fixture(scope="session")
def trained_tiny():
    from benchmark import models

    return models.load("blip-itm-tiny")


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VQA_XAI_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"
