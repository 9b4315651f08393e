"""The ``clevrxai`` loader on a fixture in the CLEVR-XAI release's layout."""
import csv

import numpy as np
import pytest

import datasets
from benchmark.core.errors import InputError, MissingImage
from tests.fixtures.clevrxai_fixture import QUESTIONS, object_mask, write_clevrxai
from tests.fixtures.loader_helpers import in_process, loader_run, records_by_id

MODEL = "blip-itm-tiny"


@pytest.fixture(scope="module")
def clevr(tmp_path_factory):
    return write_clevrxai(tmp_path_factory.mktemp("clevrxai"))


def _records(root, **options):
    return records_by_id("clevrxai", root, **options)


def test_simple_questions_single_object_masks_at_image_resolution(clevr):
    recs = _records(clevr)
    r = recs["0"]
    assert r.image.shape == (320, 480, 3) and r.answers == ["rubber"]
    assert r.family == "simple_query"
    truth = object_mask(0, 0)
    assert r.target_mask.shape == truth.shape
    # 128 × 128 in the release, nearest back to 480 × 320: the object, to a few pixels' margin
    assert (r.target_mask & truth).sum() / truth.sum() > 0.97
    assert (r.target_mask & ~truth).sum() / truth.sum() < 0.2
    assert (r.evidence_mask >= r.target_mask).all() and r.evidence_mask.sum() > truth.sum()
    assert not r.distractor_mask.any() and not r.control.any()
    assert isinstance(recs["3"], MissingImage)


@pytest.mark.parametrize("region,defined", [
    ("unique", {"12"}), ("union", {"10", "11", "12"}), ("unique_firstnonempty", {"10", "11", "12"}),
    ("all_objects", {"10", "11", "12"})])
def test_complex_questions_every_mask_type(clevr, region, defined):
    recs = _records(clevr, split="complex", region=region)
    assert {s for s, r in recs.items() if r.target_mask.any()} == defined
    assert recs["10"].answers == ["yes"] and recs["11"].answers == ["2"]
    assert recs["11"].family == "counting"


def test_unknown_region_and_split_are_one_line(clevr):
    with pytest.raises(InputError, match="use one of single_object, all_objects"):
        datasets.get("clevrxai")(data_root=str(clevr), region="union")
    with pytest.raises(InputError, match="use simple or complex"):
        datasets.get("clevrxai")(data_root=str(clevr), split="hard")


def test_bad_mask_names_file_and_question(clevr, tmp_path):
    import shutil

    root = shutil.copytree(clevr, tmp_path / "data")
    np.save(root / "ground_truth_simple_questions_single_object" / "1.npy", np.zeros((2, 3, 4)))
    with pytest.raises(InputError) as e:
        _records(root)
    assert "1.npy (question 1)" in str(e.value) and "\n" not in str(e.value)


def test_cli_every_method_and_metric_on_the_complex_union_masks(clevr, tmp_path, capsys):
    out = tmp_path / "run"
    p = in_process(["--models", MODEL, *loader_run("clevrxai"), "--data-root", clevr, "--split",
              "complex", "--region", "union", "--out", out, "--quiet"], capsys)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "results.csv").open()))
    mass = [r for r in rows if r["metric"] == "relevance_mass" and r["region"] == "target"]
    assert {r["sample_id"] for r in mass if r["value"] != ""} == set(
        map(str, QUESTIONS["complex"]))
    control = [r for r in rows if r["metric"] == "relevance_mass" and r["region"] == "control"]
    assert control and all(r["value"] == "" for r in control)
    assert {r["note"] for r in control if r["method"] == "cross_attn_gradcam"} == {
        "no control region"}


def test_region_applies_only_to_datasets_that_have_several(tmp_path, capsys):
    p = in_process(["--models", MODEL, "--methods", "random", "--metrics", "pointing_game",
              "--region", "union", "--limit", 2, "--out", tmp_path / "run", "--quiet"], capsys)
    assert p.returncode == 2 and "--region applies to datasets with several" in p.stderr
