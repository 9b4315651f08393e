"""Device logic without a GPU: ``--device auto`` picks CUDA only when torch sees one, and a run
folder never mixes units computed on two devices."""
import pytest
import torch

from benchmark.engine.cache import UnitCache
from benchmark.cli.main import dataset_metrics, main, resolve_device
from benchmark.core.errors import InputError
from benchmark.core.errors import UsageError
from tests.fixtures.cli_helpers import CSVS, SMALL, SMALL_METRIC_BUDGETS, one_line_error


@pytest.mark.parametrize("available,requested,expected", [
    (False, "auto", "cpu"), (True, "auto", "cuda"), (True, "cpu", "cpu"), (True, "cuda", "cuda")])
def test_auto_takes_cuda_only_when_torch_sees_it(monkeypatch, available, requested, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert resolve_device(requested) == expected


def test_cuda_without_a_gpu_is_a_usage_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError, match="use --device cpu"):
        resolve_device("cuda")


def test_the_cache_keeps_one_device_per_run_folder(tmp_path):
    UnitCache(tmp_path, "digest", "cpu").put({"rows": []}, "m", "method", "batch-00000")
    UnitCache(tmp_path, "digest", "cpu")  # the same device resumes
    with pytest.raises(InputError, match=r"another device \(cpu\); rerun with --device cpu"):
        UnitCache(tmp_path, "digest", "cuda:0")
    assert UnitCache(tmp_path, "digest", "cpu").get("m", "method", "batch-00000") == {"rows": []}


def test_a_gpu_rerun_into_a_cpu_folder_is_one_line_and_keeps_its_results(tmp_path, capsys,
                                                                          monkeypatch):
    out = tmp_path / "run"
    assert main(SMALL + ["--out", str(out), "--device", "cpu"]) == 0
    before = (out / "summary.csv").read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    line = one_line_error(capsys, SMALL + ["--out", str(out)])  # auto → cuda here
    assert "another device (cpu)" in line and "--device cpu" in line
    assert (out / "summary.csv").read_bytes() == before


def test_bf16_runs_every_model_metric_and_never_shares_a_folder_with_fp32(tmp_path, capsys):
    import csv

    args = ["--models", "blip-itm-tiny", "--methods", "cross_attn_gradcam",
            "--metrics", "pointing_game,deletion_auc,vqa_keep_auc", "--limit", "4",
            "--batch-size", "4", "--steps", "4", "--quiet", "--no-report", "--device", "cpu"]
    out = tmp_path / "run"
    assert main(args + ["--precision", "bf16", "--out", str(out)]) == 0
    with open(out / "summary.csv", newline="") as fh:
        means = {r["metric"]: float(r["mean"]) for r in csv.DictReader(fh)
                 if r["subset"] == "all" and r["question_type"] == "all" and r["mean"]}
    assert {"deletion_auc", "vqa_keep_auc"} <= set(means)
    assert all(0.0 <= means[m] <= 1.0 for m in ("deletion_auc", "vqa_keep_auc"))
    capsys.readouterr()
    line = one_line_error(capsys, args + ["--out", str(out)])  # fp32 into the bf16 folder
    assert "different configuration" in line


def test_the_emulated_gpu_refuses_what_cuda_refuses(monkeypatch):
    from tests.fixtures.fake_cuda import fake_cuda

    with fake_cuda(monkeypatch):
        layer = torch.nn.Linear(3, 2).to("cuda")
        x = torch.ones(4, 3).to(layer.weight.device).requires_grad_()
        y = layer(x)
        assert y.device.type == "cuda" and torch.cuda.is_available()
        assert (y * torch.tensor(2.0)).device.type == "cuda"  # a CPU scalar is fine
        assert x[torch.tensor([0, 2])].device.type == "cuda"  # so is a CPU index
        with pytest.raises(RuntimeError, match="same device"):
            x.detach() + torch.ones(4, 3)
        with pytest.raises(RuntimeError, match="same device"):
            torch.zeros(4, device="cuda").scatter_(0, torch.arange(4), 1.0)
        with pytest.raises(TypeError, match="Tensor.cpu"):
            y.numpy()
        assert y.detach().cpu().numpy().shape == (4, 2)
        assert torch.autograd.grad(y.sum(), x)[0].device.type == "cuda"


def test_every_method_and_metric_runs_on_a_gpu_with_the_cpus_numbers(tmp_path, monkeypatch):
    """On an emulated GPU (:mod:`tests.fixtures.fake_cuda`: a CPU tensor left behind in an operation with
    GPU tensors, or ``.numpy()`` on a GPU tensor, fails as on CUDA), every method and metric of
    the fused model (the cascade's machinery through emprt and smprt) — side inputs, sanity
    randomisation and all — runs through ``--device cuda``
    and writes the same bytes as the CPU run (the same kernels compute both here)."""
    from tests.fixtures.fake_cuda import fake_cuda

    # the emulator wraps every operation: sMPRT's 50 noisy copies and PNP-VQA's rounds of 20
    # captions per map would take many minutes through it; fewer take the same device paths

    # the cascade walks the stages one by one with the clone-and-randomise machinery that emprt
    # and smprt apply at once (both here): on the emulator it adds minutes, no device path
    every = [m for m in dataset_metrics("all", "synthetic") if m != "sanity_mprt"]
    args = ["--models", "difnet-itm-tiny", "--limit", "2", "--batch-size", "2", "--steps", "2",
            "--sanity-samples", "2", "--pnp-captions", "2", "--quiet", "--no-report", "--metrics",
            ",".join(every),
            "--method-option", "integrated_gradients.max_steps=64",
            "--metric-option", "smprt.n_noise=2", *SMALL_METRIC_BUDGETS]
    assert main(args + ["--out", str(tmp_path / "cpu"), "--device", "cpu"]) == 0
    with fake_cuda(monkeypatch):
        assert main(args + ["--out", str(tmp_path / "gpu")]) == 0  # --device auto → cuda
    assert (tmp_path / "gpu" / "cache" / "device").read_text().startswith("cuda")
    for name in CSVS:
        assert (tmp_path / "gpu" / name).read_bytes() == (tmp_path / "cpu" / name).read_bytes(), name
