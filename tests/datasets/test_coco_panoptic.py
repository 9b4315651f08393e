"""COCO panoptic annotations as the fused models' segmentation stream."""
import json

import numpy as np
import pytest
from PIL import Image

from benchmark.core.errors import InputError
from datasets.coco_panoptic import PanopticAnnotations
from tests.fixtures.coco_fixture import object_mask, write_coco_vqa, write_panoptic
from tests.fixtures.loader_helpers import in_process


def _write(root, ids, segments, categories):
    (root / "panoptic_val2017").mkdir()
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=2).astype(np.uint8)
    Image.fromarray(rgb).save(root / "panoptic_val2017" / "7.png")
    path = root / "panoptic_val2017.json"
    path.write_text(json.dumps({"images": [], "categories": categories, "annotations": [
        {"image_id": 7, "file_name": "7.png", "segments_info": segments}]}))
    return path


def test_histogram_counts_each_patchs_pixels_per_class(tmp_path):
    ids = np.zeros((4, 6), np.int64)
    ids[:2, :3] = 70000  # segment ids above 65535 use the blue channel
    ids[2:, :] = 5
    path = _write(tmp_path, ids, [{"id": 70000, "category_id": 9, "iscrowd": 0},
                                  {"id": 5, "category_id": 3, "iscrowd": 1}],
                  [{"id": 3, "name": "grass"}, {"id": 9, "name": "dog"}])
    ann = PanopticAnnotations(path)
    h = ann.histogram(7, 2)  # 4 × 6 pixels in a 2 × 2 grid: patches of 2 × 3
    assert ann.n_classes == 2
    assert np.allclose(h, [[0, 1], [0, 0], [1, 0], [1, 0]])  # top right: unlabelled
    h3 = ann.histogram(7, 3)  # a grid that does not divide the image
    assert h3.shape == (9, 2) and (h3.sum(1) <= 1 + 1e-6).all()


def test_the_fixtures_classes_and_unknown_categories(tmp_path):
    write_coco_vqa(tmp_path)
    ann = PanopticAnnotations(write_panoptic(tmp_path))
    cls = ann.class_map(724)
    cup = list(ann.class_of).index(47)
    # the cup (41) minus what the later spoon (42) and table (43) cover
    assert ((cls == cup) == (object_mask(41) & ~object_mask(42) & ~object_mask(43))).all()
    with pytest.raises(InputError, match="no annotation for image 776"):
        ann.histogram(776, 12)
    obj = json.loads((tmp_path / "panoptic_val2017.json").read_text())
    obj["categories"] = obj["categories"][1:]
    (tmp_path / "panoptic_val2017.json").write_text(json.dumps(obj))
    with pytest.raises(InputError, match="unknown category_id 1"):
        PanopticAnnotations(tmp_path / "panoptic_val2017.json").histogram(139, 12)


def test_a_folder_of_both_2017_splits_reads_each_image_from_the_file_that_has_it(tmp_path):
    """VQA v2 val is COCO val2014, whose images COCO 2017 spread over train2017 and val2017."""
    one = PanopticAnnotations(write_panoptic(tmp_path / "one"))
    both = tmp_path / "both"
    write_panoptic(both)
    obj = json.loads((both / "panoptic_val2017.json").read_text())
    (both / "panoptic_val2017").rename(both / "panoptic_train2017")
    in_train = {139, 632}
    for split, keep in (("train", in_train), ("val", {285, 724})):
        part = {**obj, "annotations": [a for a in obj["annotations"] if a["image_id"] in keep]}
        (both / f"panoptic_{split}2017.json").write_text(json.dumps(part))
    (both / "panoptic_val2017").mkdir()
    for a in obj["annotations"]:
        if a["image_id"] not in in_train:
            (both / "panoptic_train2017" / a["file_name"]).rename(
                both / "panoptic_val2017" / a["file_name"])
    union = PanopticAnnotations(both)
    assert union.n_classes == one.n_classes
    for image_id in (139, 285, 632, 724):
        assert np.array_equal(union.histogram(image_id, 12), one.histogram(image_id, 12))
    with pytest.raises(InputError, match="panoptic files of every 2017 split"):
        union.histogram(776, 12)
    obj["categories"] = obj["categories"][:-1]
    (both / "panoptic_val2017.json").write_text(json.dumps(obj))
    with pytest.raises(InputError, match="lists other categories than"):
        PanopticAnnotations(both)


def test_cli_fused_model_reads_the_panoptic_stream(tmp_path, capsys):
    root = write_coco_vqa(tmp_path / "coco")
    five = {1: "person", 17: "cat", 28: "umbrella", 47: "cup", 67: "dining table"}
    good = write_panoptic(tmp_path / "five", five)
    args = ["--models", "difnet-itm-tiny", "--methods", "fused_gradcam", "--metrics",
            "pointing_game", "--dataset", "vqav2", "--data-root", root, "--quiet"]
    p = in_process([*args, "--segmentation", f"panoptic:{good}", "--out", tmp_path / "a"],
                   capsys)
    assert p.returncode == 0, p.stderr
    seven = write_panoptic(tmp_path / "seven")
    p = in_process([*args, "--segmentation", f"panoptic:{seven}", "--out", tmp_path / "b"],
                   capsys)
    assert p.returncode == 2 and "the file has 7 classes, the model reads 5" in p.stderr
