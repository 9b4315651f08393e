"""The ``vqav2`` loader on the synthetic data exported in the official VQA v2 + COCO format."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import datasets
from benchmark.core.errors import InputError
from datasets import synthetic as syn
from datasets.export import export_vqav2
from tests.fixtures.plugin_files import PLUGIN_MODEL, write_model_plugin

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "benchmark" / "models" / "checkpoints" / "blip-itm-tiny.json"
N = 14
QFILE = "v2_OpenEnded_mscoco_val2014_questions.json"
AFILE = "v2_mscoco_val2014_annotations.json"
IFILE = "instances_val2014.json"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_vqav2(tmp_path_factory.mktemp("vqav2"), n=N, seed=0)


@pytest.fixture
def data_root(exported, tmp_path):
    """A private copy of the export that a test may damage."""
    import shutil

    return Path(shutil.copytree(exported, tmp_path / "data"))


def _image(root: Path, image_id: int) -> Path:
    return root / "val2014" / f"COCO_val2014_{image_id:012d}.jpg"


def test_registered_with_official_vqa_accuracy():
    assert "vqav2" in datasets.available()
    assert datasets.get("vqav2").exact_match is False


def test_round_trip_matches_the_synthetic_samples(exported):
    data = datasets.get("vqav2")(data_root=str(exported))
    assert len(data) == N
    assert data.describe() == {"name": "vqav2", "split": "val", "data_root": str(exported),
                               "n": N, "evidence": True}
    for i in range(N):
        r, s = data[i], syn.generate(0, "test", i)
        assert r.sample_id == str((i + 1) * 10)  # ordered by question id
        assert (r.question, r.answers, r.family) == (s.question, s.answers, s.family)
        assert r.image.dtype == np.uint8 and r.image.shape == s.image.shape  # JPEG: not bit-equal
        assert np.abs(r.image.astype(int) - s.image).mean() < 8
        assert r.target_mask.dtype == bool and (r.target_mask == s.target_mask).all()
        # the distractor is one other object of the image (empty only with an empty target)
        assert not (r.distractor_mask & r.target_mask).any()
        assert r.distractor_mask.any() == r.target_mask.any()
        if r.distractor_mask.any():
            (k,) = np.unique(s.instance_map[r.distractor_mask])
            assert k > 0 and ((s.instance_map == k) == r.distractor_mask).all()
        # shape classes as in the generator (COCO instances carry no clutter class)
        clutter = syn.SEMANTIC_CLASSES.index("clutter")
        expected = np.where(s.semantic_map == clutter, 0, s.semantic_map)
        assert r.semantic_map.dtype == np.uint8 and (r.semantic_map == expected).all()
    assert any(not data[i].target_mask.any() for i in range(N))  # a "no" exist question


def test_distractor_prefers_an_object_of_the_target_category(exported):
    data = datasets.get("vqav2")(data_root=str(exported))
    for i in range(N):
        r, s = data[i], syn.generate(0, "test", i)
        if not r.target_mask.any():
            continue
        shape_of = {k: o.shape for k, o in enumerate(s.objects, start=1)}
        target_shapes = {shape_of[k] for k in np.unique(s.instance_map[r.target_mask])}
        others = {shape_of[k] for k in np.unique(s.instance_map[~r.target_mask]) if k}
        picked = {shape_of[k] for k in np.unique(s.instance_map[r.distractor_mask])}
        assert len(picked) == 1
        if target_shapes & others:
            assert picked <= target_shapes


def test_fingerprint_is_deterministic(exported):
    a = datasets.get("vqav2")(data_root=str(exported))
    b = datasets.get("vqav2")(data_root=str(exported), seed=5)
    assert a.fingerprint() == b.fingerprint()


def test_without_evidence_the_category_names_give_the_region(data_root):
    (data_root / "evidence.json").unlink()
    data = datasets.get("vqav2")(data_root=str(data_root))
    assert data.describe()["evidence"] is False
    named = 0
    for i in range(N):
        r, s = data[i], syn.generate(0, "test", i)
        words = r.question.rstrip("?").split()
        shapes = [sh for sh in syn.SHAPES if sh in words or sh + "s" in words]
        expected = np.isin(s.instance_map, [k for k, o in enumerate(s.objects, start=1)
                                            if o.shape in shapes])
        assert (r.target_mask == expected).all(), r.question
        assert r.extra["target_source"] == "category_name"
        if shapes:
            named += 1
            assert r.target_mask.any(), r.question
        else:
            assert not r.target_mask.any() and not r.distractor_mask.any()
    assert 0 < named < N


def test_plural_and_synonym_matching():
    from datasets.category_mentions import mentions, word_tokens

    assert mentions(word_tokens("How many circles are there?"), "circle")
    assert mentions(word_tokens("How many glasses?"), "glass")
    assert mentions(word_tokens("Is the man smiling?"), "person")
    assert mentions(word_tokens("What is on the dining table?"), "dining table")
    assert not mentions(word_tokens("What is on the dining room wall?"), "dining table")
    assert not mentions(word_tokens("Is this a squared pattern?"), "square")


# ------------------------------------------------------------------ bad input


def _error(**options) -> str:
    with pytest.raises(InputError) as e:
        data = datasets.get("vqav2")(**options)
        [data[i] for i in range(len(data))]
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_data_root_option():
    msg = _error()
    assert "vqav2 needs --data-root DIR" in msg and QFILE in msg


def test_data_root_that_does_not_exist(tmp_path):
    msg = _error(data_root=str(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in msg and "--data-root" in msg


@pytest.mark.parametrize("name", [QFILE, AFILE, IFILE])
def test_missing_json_file(data_root, name):
    (data_root / name).unlink()
    msg = _error(data_root=str(data_root))
    assert str(data_root / name) in msg and "missing" in msg


@pytest.mark.parametrize("name", [QFILE, AFILE, IFILE, "evidence.json"])
def test_malformed_json(data_root, name):
    path = data_root / name
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    msg = _error(data_root=str(data_root))
    assert f"malformed JSON in {path}: line 1 column" in msg and "regenerate" in msg


def test_missing_required_key(data_root):
    path = data_root / AFILE
    obj = json.loads(path.read_text())
    del obj["annotations"][3]["answers"]
    path.write_text(json.dumps(obj))
    msg = _error(data_root=str(data_root))
    assert str(path) in msg and "'answers'" in msg


def test_evidence_naming_an_unknown_annotation(data_root):
    path = data_root / "evidence.json"
    obj = json.loads(path.read_text())
    obj["10"] = [10 ** 9]
    path.write_text(json.dumps(obj))
    msg = _error(data_root=str(data_root))
    assert str(path) in msg and "1000000000" in msg


def test_missing_image_is_reported_when_loaded(data_root):
    _image(data_root, 3).unlink()
    data = datasets.get("vqav2")(data_root=str(data_root))  # JSON is fine: builds
    data[0], data[1]
    with pytest.raises(InputError) as e:
        data[2]
    assert str(_image(data_root, 3)) in str(e.value) and "missing image" in str(e.value)


def test_corrupt_image_is_reported_when_loaded(data_root):
    _image(data_root, 2).write_bytes(b"this is not a jpeg\x00\xff" * 10)
    data = datasets.get("vqav2")(data_root=str(data_root))
    with pytest.raises(InputError) as e:
        data[1]
    assert str(_image(data_root, 2)) in str(e.value) and "corrupt image" in str(e.value)


def test_truncated_image_is_reported(data_root):
    path = _image(data_root, 1)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(InputError) as e:
        datasets.get("vqav2")(data_root=str(data_root))[0]
    assert str(path) in str(e.value)


# ------------------------------------------------------------------ command line

@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    return write_model_plugin(tmp_path_factory.mktemp("plugin"))


def _cli(args, plugin_path, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(plugin_path), str(ROOT)]))
    return subprocess.run([sys.executable, "-m", "benchmark", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _model_or_skip(model: str) -> str:
    if model == "blip-itm-tiny" and not CHECKPOINT.exists():
        pytest.skip(f"{CHECKPOINT} not shipped yet")
    return model


@pytest.mark.parametrize("model", ["blip-itm-tiny", PLUGIN_MODEL])
def test_cli_end_to_end(exported, plugin_path, tmp_path, model):
    import csv

    out = tmp_path / "run"
    p = _cli(["--models", _model_or_skip(model), "--methods", "random", "--metrics",
              "pointing_game", "--dataset", "vqav2", "--data-root", exported, "--limit", 4,
              "--out", out, "--quiet", "--no-report"], plugin_path)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["sample_id"] for r in rows} == {"10", "20", "30", "40"}
    assert {r["model"] for r in rows} == {model} and {r["method"] for r in rows} == {"random"}
    assert {r["question_type"] for r in rows} == {"exist", "query_colour", "query_shape", "count"}
    target = [r for r in rows if r.get("region", "target") == "target"]
    assert all(r["value"] != "" for r in target)
    manifest = json.loads((out / "manifest.json").read_text())
    assert "vqav2" in json.dumps(manifest) and str(exported) in json.dumps(manifest)


@pytest.mark.parametrize("model", ["blip-itm-tiny", PLUGIN_MODEL])
def test_cli_corrupt_image_exits_2_with_one_line(data_root, plugin_path, tmp_path, model):
    bad = _image(data_root, 2)
    bad.write_bytes(b"garbage" * 50)
    p = _cli(["--models", _model_or_skip(model), "--methods", "random", "--metrics",
              "pointing_game", "--dataset", "vqav2", "--data-root", data_root, "--limit", 4,
              "--out", tmp_path / "run", "--quiet", "--no-report"], plugin_path)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0], p.stderr


def test_cli_vqav2_without_data_root_exits_2(plugin_path, tmp_path):
    p = _cli(["--models", PLUGIN_MODEL, "--methods", "random", "--metrics", "pointing_game",
              "--dataset", "vqav2", "--limit", 2, "--out", tmp_path / "run", "--quiet",
              "--no-report"],
             plugin_path)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "dataset vqav2 needs --data-root DIR" in lines[0], p.stderr


def test_real_images_use_torchrays_15px_at_native_resolution_and_a_control(exported):
    from datasets.loader_synthetic import SyntheticDataset

    data = datasets.get("vqav2")(data_root=str(exported))
    assert data.pointing_tolerance(96) == 15.0 and data.pointing_tolerance(640) == 15.0
    assert SyntheticDataset("test").pointing_tolerance(96) == pytest.approx(15 * 96 / 224)
    records = [data[i] for i in range(N)]
    for r in records:
        assert not (r.control & r.target_mask).any()
    assert any(r.control.any() for r in records)
    assert all(r.extra["control_annotation_ids"] == [] for r in records if not r.control.any())
