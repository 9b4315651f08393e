"""The ``vqahat`` loader and ``human_rank_corr`` on a fixture in VQA-HAT's layout (VQA v1 files,
COCO instances and images, ``vqahat_val/<question_id>_<k>.png``)."""
import csv
import shutil

import numpy as np
import pytest
from scipy.stats import spearmanr

import datasets
import metrics
from benchmark.core.errors import InputError, MissingImage
from benchmark.core.maps import to_human_grid
from tests.fixtures.coco_fixture import HAT_MAPS, human_map, write_vqahat
from tests.fixtures.loader_helpers import in_process, loader_run

MODEL = "blip-itm-tiny"


@pytest.fixture(scope="module")
def hat(tmp_path_factory):
    return write_vqahat(tmp_path_factory.mktemp("vqahat"))


def test_questions_with_maps_joined_to_vqa_v1_and_coco(hat):
    data = datasets.get("vqahat")(data_root=str(hat))
    assert data.references == ("human_map",) and not data.exact_match
    ids = []
    for i in range(len(data)):
        try:
            r = data[i]
        except MissingImage as e:
            assert e.sample_id == "5001"
            continue
        ids.append(r.sample_id)
        qid = int(r.sample_id)
        assert len(r.extra["annotator_maps"]) == HAT_MAPS[qid][0]
        expected = np.mean([to_human_grid(human_map(qid, k) / 255.0)
                            for k in range(1, HAT_MAPS[qid][0] + 1)], axis=0)
        assert r.extra["human_map"].shape == (14, 14)
        assert np.abs(r.extra["human_map"] - expected).max() < 1e-6  # PNG: lossless
    assert ids == ["1001", "1002", "2001", "4001", "4002"]  # 3001 has no map


def test_rank_correlation_is_spearmans_at_14x14():
    fn = metrics.get("human_rank_corr")
    rng = np.random.default_rng(0)
    heat, human = rng.normal(size=(24, 24)), rng.random((14, 14))
    assert fn(heat, human) == pytest.approx(spearmanr(to_human_grid(heat).ravel(),
                                                      human.ravel()).correlation)
    assert fn(human, human) == pytest.approx(1.0) and fn(-human, human) == pytest.approx(-1.0)
    assert np.isnan(fn(np.ones((7, 7)), human))
    assert np.isnan(fn(np.full((7, 7), np.nan), human))


def test_missing_map_folder_and_no_matching_maps_are_one_line(hat, tmp_path):
    root = shutil.copytree(hat, tmp_path / "data")
    for p in (root / "vqahat_val").iterdir():
        p.rename(p.with_name("x" + p.name))
    with pytest.raises(InputError) as e:
        datasets.get("vqahat")(data_root=str(root))
    assert "has a map in" in str(e.value) and "\n" not in str(e.value)
    shutil.rmtree(root / "vqahat_val")
    with pytest.raises(InputError) as e:
        datasets.get("vqahat")(data_root=str(root))
    assert "vqahat_val.zip" in str(e.value)


def test_cli_every_method_and_metric_with_the_inter_human_reference(hat, tmp_path, capsys):
    out = tmp_path / "run"
    with_report = [a for a in loader_run("vqahat") if a != "--no-report"]
    p = in_process(["--models", MODEL, *with_report, "--data-root", hat, "--out", out,
                    "--quiet"], capsys)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "results.csv").open()))
    corr = {(r["method"], r["sample_id"]): r for r in rows if r["metric"] == "human_rank_corr"}
    human = {s: r for (m, s), r in corr.items() if m == "inter_human"}
    assert set(human) == {"1001", "1002", "4001", "4002"}  # 2001: one map; 5001: no image
    assert all(r["model"] == "human" and float(r["value"]) > 0.5 for r in human.values())
    assert corr[("cross_attn_gradcam", "1001")]["value"] != ""
    assert "image missing" in corr[("random", "5001")]["note"]
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert any(r["model"] == "human" and r["metric"] == "human_rank_corr" for r in summary)
    assert (out / "index.html").exists()
