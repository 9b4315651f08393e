"""--engine ray on a local Ray cluster (2 workers, 1 CPU each): the same bytes as the local
engine, a worker killed mid-run retried to the same bytes, and each engine resuming the other."""
import os
import shutil
import signal

import pytest
import ray

from benchmark.cli.main import main, run_config
from benchmark.cli.args import run_parser
from benchmark.engine.ray_engine import compute_on_ray

#: a trained model, model-based and sanity metrics, several batches per method
ARGS = ["--models", "blip-itm-tiny", "--methods", "random,cross_attn_gradcam,rollout",
        "--metrics", "pointing_game,deletion_auc,vqa_keep_auc,random_logit", "--limit", "8",
        "--batch-size", "2", "--steps", "4", "--sanity-samples", "4", "--quiet", "--no-report",
        "--device", "cpu"]
CSVS = ("results.csv", "summary.csv", "curves.csv", "comparisons.csv", "sanity.csv")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    assert main(ARGS + ["--out", str(out)]) == 0
    return out


def _same_bytes(a, b):
    for name in CSVS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_ray_gives_the_local_engines_bytes(cluster, local, tmp_path, capfd):
    out = tmp_path / "ray"
    capfd.readouterr()
    assert main(ARGS + ["--out", str(out), "--engine", "ray"]) == 0
    _same_bytes(local, out)
    assert capfd.readouterr().err == ""  # --quiet: nothing from Ray either


def test_a_killed_worker_is_retried_and_the_run_ends_with_the_same_bytes(cluster, local,
                                                                         tmp_path):
    out = tmp_path / "killed"
    cfg = run_config(run_parser().parse_args(ARGS + ["--out", str(out)]))
    killed = []

    def kill_one_worker(actors):
        if not killed:  # after the first unit: the actor's in-flight unit dies with it
            pid = ray.get(actors["blip-itm-tiny"][0].pid.remote())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    compute_on_ray(cfg, out, actors_per_model=2, progress=False, on_result=kill_one_worker)
    assert killed
    units = sorted((out / "cache" / "blip-itm-tiny").rglob("batch-*.json"))
    assert len([u for u in units if "effects" not in u.parts]) == 3 * 4  # every unit computed
    # the local engine merges what Ray computed, computing nothing
    assert main(ARGS + ["--out", str(out)]) == 0
    _same_bytes(local, out)


def test_ray_resumes_a_local_run(cluster, local, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(local, out)
    for name in CSVS:
        (out / name).unlink()
    gone = sorted((out / "cache" / "blip-itm-tiny" / "cross_attn_gradcam").iterdir())[1:]
    for path in gone + [out / "cache" / "blip-itm-tiny" / "rollout" / "sanity.json"]:
        path.unlink()
    assert main(ARGS + ["--out", str(out), "--engine", "ray"]) == 0
    _same_bytes(local, out)


def test_more_models_than_cpus_each_get_their_actor_in_turn(cluster, tmp_path):
    # three models' actors on two CPUs: a finished model's actor must free its CPU
    args = ["--models", "blip-itm-tiny@init,difnet-itm-tiny@init,blip-itm-tiny",
            "--methods", "random,cross_attn_gradcam", "--metrics", "pointing_game,deletion_auc",
            "--limit", "4", "--batch-size", "2", "--steps", "4", "--quiet", "--no-report",
            "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "ray"), "--engine", "ray", "--ray-actors", "1"]) == 0
    assert main(args + ["--out", str(tmp_path / "local")]) == 0
    _same_bytes(tmp_path / "local", tmp_path / "ray")
