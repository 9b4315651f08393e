"""The ``gqa`` loader and GQA's grounding score on a fixture in GQA's published formats."""
import csv
import json
import shutil

import numpy as np
import pytest

import datasets
import metrics
from benchmark.core.errors import InputError, MissingImage
from datasets.loader_gqa import box_mask
from tests.fixtures.gqa_fixture import GRAPHS, QUESTIONS, write_gqa
from tests.fixtures.loader_helpers import in_process, loader_run, records_by_id

MODEL = "blip-itm-tiny"


@pytest.fixture(scope="module")
def gqa(tmp_path_factory):
    return write_gqa(tmp_path_factory.mktemp("gqa"))


@pytest.fixture
def damaged(gqa, tmp_path):
    return shutil.copytree(gqa, tmp_path / "data")


def _records(root, **options):
    return records_by_id("gqa", root, **options)


def _boxes(image_id, *ids):
    g = GRAPHS[image_id]
    return np.logical_or.reduce([box_mask(g["objects"][o], g["height"], g["width"])
                                 for o in ids])


def test_questions_in_id_order_with_gqa_families_and_exact_match(gqa):
    data = datasets.get("gqa")(data_root=str(gqa))
    assert data.exact_match and data.references == ("gqa_regions",)
    recs = _records(gqa)
    assert list(recs) == ["201", "202", "204", "205", "206", "207", "1203"]
    r = recs["201"]
    assert (r.question, r.answers, r.family) == ("Is the man wearing a helmet?", ["yes"], "verify")
    assert r.extra["detailed_type"] == "relVerify" and r.image.shape == (512, 512, 3)


def test_regions_follow_the_annotation_pointers(gqa):
    recs = _records(gqa)
    # question objects → target; answer and full-answer objects join the evidence
    assert (recs["202"].target_mask == _boxes("2354786", "1001")).all()
    assert (recs["202"].evidence_mask == _boxes("2354786", "1001", "1002")).all()
    assert (recs["1203"].target_mask == _boxes("2368312", "2001", "2003")).all()
    # a comma-separated pointer names both objects
    assert recs["206"].extra["evidence_object_ids"] == ["3002", "3001"]
    # nothing pointed to: no region (excluded from localisation), no control either
    r = recs["205"]
    assert not r.target_mask.any() and not r.distractor_mask.any() and not r.control.any()
    for r in recs.values():
        if isinstance(r, MissingImage):
            continue
        assert not (r.distractor_mask & r.target_mask).any()
        assert not (r.control & r.target_mask).any()
        # never an object the answer depends on
        assert r.extra["distractor_object_id"] not in r.extra["evidence_object_ids"]
        assert not set(r.extra["control_object_ids"]) & set(r.extra["evidence_object_ids"])
    # the distractor prefers an object named like a target object: the other cup
    assert recs["1203"].extra["distractor_object_id"] == "2005"


def test_a_missing_image_is_a_noted_question(gqa):
    e = _records(gqa)["207"]
    assert isinstance(e, MissingImage) and e.family == "query" and "2499999.jpg" in str(e)


def _official_grounding(att_xy, regions, n):
    """GQA's computeGroundingScore, term by term: cells (i, j) over x then y, attention [x][y]."""
    def inter(a0, a1, b0, b1):
        return max(0.0, min(a1, b1) - max(a0, b0))

    score = 0.0
    for x0, y0, x1, y1 in regions:
        for i in range(n):
            for j in range(n):
                c = (i / n, j / n, (i + 1) / n, (j + 1) / n)
                rate = inter(c[0], c[2], x0, x1) * inter(c[1], c[3], y0, y1) / (1 / n) ** 2
                score += att_xy[i][j] * rate
    return score


def test_grounding_equals_gqas_score_on_its_own_terms(gqa):
    fn = metrics.get("gqa_grounding")
    rng = np.random.default_rng(0)
    recs = _records(gqa)
    for sid in ("201", "202", "204", "1203", "206"):
        regions = recs[sid].extra["gqa_regions"]
        heat = rng.normal(size=(7, 7))  # signed, as attribution maps are
        att = np.clip(heat, 0, None) / np.clip(heat, 0, None).sum()
        assert fn(heat, regions) == pytest.approx(_official_grounding(att.T, regions, 7),
                                                  rel=1e-9)
    # the helmet box lies inside the man's, and both are listed twice: repeats count again
    uniform = np.ones((8, 8))
    regions = recs["201"].extra["gqa_regions"]
    assert len(regions) == 4 and fn(uniform, regions) > 1.0
    # GQA's whole-image rule tests for a step *keyed* "scene": its steps have none
    assert recs["205"].extra["gqa_regions"] == []
    assert np.isnan(fn(uniform, []))
    assert np.isnan(fn(-uniform, regions))


def test_reference_metrics_follow_the_dataset(gqa):
    from benchmark.cli.main import dataset_metrics
    from benchmark.core.errors import UsageError

    assert "gqa_grounding" in dataset_metrics("all", "gqa")
    assert "gqa_grounding" not in dataset_metrics("all", "synthetic")
    with pytest.raises(UsageError) as e:
        dataset_metrics("pointing_game,gqa_grounding", "synthetic")
    assert "use it with --dataset gqa" in str(e.value)


@pytest.mark.parametrize("damage,expect", [
    (lambda root: (root / "val_sceneGraphs.json").unlink(), "missing GQA scene graphs file"),
    (lambda root: (root / "val_balanced_questions.json").write_text('{"201": {'),
     "malformed JSON in"),
    (lambda root: _edit(root, "val_balanced_questions.json",
                        lambda q: q["202"]["annotations"]["answer"].update({"0": "999"})),
     "question 202 points (answer) to object 999"),
    (lambda root: _edit(root, "val_sceneGraphs.json",
                        lambda g: g["2368312"]["objects"]["2002"].pop("w")),
     "object 2002 of image 2368312 has no 'w' key"),
    (lambda root: _edit(root, "val_sceneGraphs.json", lambda g: g.pop("2400001")),
     "no scene graph for image 2400001 (question 205)"),
])
def test_bad_files_are_one_line_naming_file_and_record(damaged, damage, expect):
    damage(damaged)
    with pytest.raises(InputError) as e:
        _records(damaged)
    assert expect in str(e.value) and str(damaged) in str(e.value) and "\n" not in str(e.value)


def _edit(root, name, change):
    obj = json.loads((root / name).read_text())
    change(obj)
    (root / name).write_text(json.dumps(obj))


def test_cli_every_method_and_metric(gqa, tmp_path, capsys):
    out = tmp_path / "run"
    p = in_process(["--models", MODEL, *loader_run("gqa"), "--data-root", gqa,
              "--out", out, "--quiet"], capsys)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "results.csv").open()))
    grounding = {r["sample_id"]: r for r in rows
                 if r["metric"] == "gqa_grounding" and r["method"] == "cross_attn_gradcam"}
    assert set(grounding) == set(QUESTIONS)
    assert all(grounding[s]["value"] != "" for s in ("201", "202", "204", "206", "1203"))
    assert "image missing" in grounding["207"]["note"] and grounding["205"]["value"] == ""
    evidence = [r for r in rows if r["region"] == "evidence" and r["metric"] == "pointing_game"]
    assert evidence and {r["sample_id"] for r in evidence if r["value"] != ""} == {
        "201", "202", "204", "206", "1203"}


def test_cli_corrupt_image_exits_2_naming_file_and_question_and_keeps_results(damaged,
                                                                              tmp_path, capsys):
    args = ["--models", MODEL, "--methods", "random", "--metrics", "pointing_game", "--dataset",
            "gqa", "--data-root", damaged, "--out", tmp_path / "run", "--quiet", "--no-report"]
    assert in_process(args, capsys).returncode == 0
    kept = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()
            and p.name not in ("run.log", ".lock")}  # the log and the lock name each process
    (damaged / "images" / "2368312.jpg").write_bytes(b"not a jpeg" * 40)
    p = in_process(args, capsys)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert "2368312.jpg" in lines[0] and "question 204" in lines[0]
    assert all(path.read_bytes() == data for path, data in kept.items())
