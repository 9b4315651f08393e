"""The ``vqav2`` loader on real photographs in the official VQA v2 + COCO formats, with every
awkward case real COCO has (:mod:`tests.fixtures.coco_fixture`)."""
import csv
import json
import shutil

import numpy as np
import pytest

from benchmark.engine.config import RunConfig
from benchmark.core.errors import InputError, MissingImage
from benchmark.engine.run_data import load_run_data
from tests.fixtures.coco_fixture import IMAGES, OBJECTS, SUB, object_mask, photo, write_coco_vqa
from tests.fixtures.loader_helpers import in_process, loader_run, records_by_id

MODEL = "blip-itm-tiny"


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    return write_coco_vqa(tmp_path_factory.mktemp("coco"))


@pytest.fixture(scope="module")
def records(coco):
    return records_by_id("vqav2", coco)


def test_grayscale_and_cmyk_jpegs_load_as_rgb_at_their_own_size(records):
    for r in records.values():
        if isinstance(r, MissingImage):
            continue
        image_id = r.extra["image_id"]
        source = photo(image_id)
        assert r.image.dtype == np.uint8 and r.image.shape == source.shape[:2] + (3,)
        if IMAGES[image_id][1] == "L":
            assert (r.image[..., 0] == r.image[..., 1]).all()
            assert np.abs(r.image[..., 0].astype(int) - source).mean() < 6
        else:  # RGB and CMYK: JPEG-coded, close to the photo
            assert np.abs(r.image.astype(int) - source).mean() < 12
    assert len({r.image.shape for r in records.values() if not isinstance(r, MissingImage)}) == 3


def test_every_segmentation_form_decodes_to_what_it_denotes(records):
    # 11/13/41/22: polygons; 21/42: uncompressed RLE; 12/31/43: compressed RLE; 44: empty
    expected = {"1001": [11, 12], "2001": [21], "3001": [31], "4001": [41]}
    for sid, ids in expected.items():
        union = np.logical_or.reduce([object_mask(a) for a in ids])
        assert records[sid].extra["target_annotation_ids"] == ids
        assert (records[sid].target_mask == union).all(), sid
    assert not records["4002"].target_mask.any()  # "What is this?" names no category
    from skimage.draw import polygon

    # pycocotools' polygon raster is the outline's, to the boundary pixels
    xy = np.array(OBJECTS[41][2]).reshape(-1, 2)
    ref = np.zeros(records["4001"].target_mask.shape, bool)
    ref[polygon(xy[:, 1], xy[:, 0], ref.shape)] = True
    inter = (ref & records["4001"].target_mask).sum()
    assert inter / (ref | records["4001"].target_mask).sum() > 0.97


def test_a_crowd_joins_the_target_but_is_never_a_control(records):
    r = records["1001"]  # "people": the astronaut (11) and a crowd region of people (12)
    assert r.target_mask[object_mask(12)].all()
    assert r.extra["distractor_annotation_id"] == 13  # the one non-crowd, non-target object
    assert r.extra["control_annotation_ids"] == [13]  # matched to the one non-crowd target
    for other in records.values():
        if not isinstance(other, MissingImage):
            assert 12 not in other.extra["control_annotation_ids"]
            assert other.extra["distractor_annotation_id"] != 12


def test_overlapping_instances_leave_the_controls_outside_the_target(records):
    r = records["2001"]  # the tripod (22) overlaps the cameraman (21)
    assert (object_mask(22) & object_mask(21)).any()
    assert r.extra["distractor_annotation_id"] == 22
    assert r.distractor_mask.any() and not (r.distractor_mask & r.target_mask).any()
    assert (r.distractor_mask == object_mask(22) & ~object_mask(21)).all()
    for r in records.values():
        if not isinstance(r, MissingImage):
            assert not (r.control & r.target_mask).any()


def test_synonyms_come_from_the_data_file():
    from datasets.category_mentions import mentions, synonyms, word_tokens

    table = synonyms()
    assert "man" in table["person"] and "mobile phone" in table["cell phone"]
    assert mentions(word_tokens("Is the man holding a camera?"), "person")
    assert mentions(word_tokens("Whose mobile phone is it?"), "cell phone")


def test_a_missing_image_keeps_its_question_as_noted_rows(coco, records):
    assert isinstance(records["5001"], MissingImage)
    data = load_run_data(RunConfig(models=[], methods=[], metrics=[], dataset="vqav2", split="val",
                               data_root=str(coco)))
    assert [r.sample_id for r in data.records] == ["1001", "1002", "2001", "3001", "4001", "4002"]
    family, note = data.excluded["5001"]
    assert family == "how many" and "image missing" in note and "000000000776.jpg" in note
    assert data.dataset_info["images_missing"] == 1
    assert data.dataset_info["image_size"] == {"min": 300, "max": 512}


def test_every_image_missing_is_one_line(coco, tmp_path):
    root = shutil.copytree(coco, tmp_path / "data")
    shutil.rmtree(root / SUB)
    with pytest.raises(InputError) as e:
        load_run_data(RunConfig(models=[], methods=[], metrics=[], dataset="vqav2", split="val",
                            data_root=str(root)))
    assert "every image of the run's 7 questions is missing" in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_on_real_photos_every_method_and_metric(coco, tmp_path, capsys):
    out = tmp_path / "run"
    p = in_process(["--models", MODEL, *loader_run("vqav2", sanity=True), "--data-root", coco,
              "--out", out, "--quiet"], capsys)
    assert p.returncode == 0, p.stderr
    assert "1 of 7 questions have no image file" in p.stderr
    rows = list(csv.DictReader((out / "results.csv").open()))
    missing = [r for r in rows if r["sample_id"] == "5001"]
    assert missing and all(r["value"] == "" and "image missing" in r["note"] for r in missing)
    assert {r["method"] for r in missing} == {r["method"] for r in rows}
    present = [r for r in rows if r["sample_id"] == "1001" and r["region"] == "target"
               and r["method"] == "cross_attn_gradcam"]
    assert present and all(r["value"] != "" for r in present if r["metric"] != "vqa_pnp_sample")
    summary = list(csv.DictReader((out / "summary.csv").open()))
    pg = next(r for r in summary if r["metric"] == "pointing_game" and r["region"] == "target"
              and r["method"] == "random" and r["subset"] == "all"
              and r["question_type"] == "all")
    assert (pg["n"], pg["n_excluded"]) == ("5", "2")  # 4002: no region; 5001: no image
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["images_missing"] == 1
    sanity = list(csv.DictReader((out / "sanity.csv").open()))
    assert {r["method"] for r in sanity} >= {"cross_attn_gradcam", "integrated_gradients"}


def test_resuming_over_changed_files_is_refused(coco, tmp_path, capsys):
    root = shutil.copytree(coco, tmp_path / "data")
    args = ["--models", MODEL, "--methods", "random", "--metrics", "pointing_game", "--dataset",
            "vqav2", "--data-root", root, "--out", tmp_path / "run", "--quiet", "--no-report"]
    assert in_process(args, capsys).returncode == 0
    from PIL import Image

    Image.fromarray(photo(776)).save(root / SUB / "COCO_val2014_000000000776.jpg")  # it appears
    p = in_process(args, capsys)
    assert p.returncode == 2
    assert "the dataset's files changed" in p.stderr and len(p.stderr.strip().splitlines()) == 1
