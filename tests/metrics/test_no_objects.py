"""An image with no annotated object is a valid image: a COCO image without instance
annotations (COCO has them, and PNP-VQA's VQA v2 evaluation reads them) and a GQA image whose
scene graph has no objects. Their questions keep every row: the localisation metrics noted "no
target region", the model-based metrics scored as usual."""
import csv
import json

import pytest

import metrics
from tests.fixtures.coco_fixture import IFILE, SUB, VQA_FILES, skimage_photo, write_coco_vqa
from tests.fixtures.gqa_fixture import write_gqa
from tests.fixtures.loader_helpers import in_process, loader_run, records_by_id

MODEL = "blip-itm-tiny"
EMPTY_IMAGE = 900


def write_coco_with_an_empty_image(root):
    """The real-photo VQA v2 fixture plus image 900 (scikit-image's coins), which no instance
    annotates, and question 9001 about it."""
    from PIL import Image

    root = write_coco_vqa(root)
    coins = skimage_photo("coins")
    Image.fromarray(coins).save(root / SUB / f"COCO_{SUB}_{EMPTY_IMAGE:012d}.jpg", quality=92)
    inst = json.loads((root / IFILE).read_text())
    inst["images"].append({"id": EMPTY_IMAGE, "file_name": f"COCO_{SUB}_{EMPTY_IMAGE:012d}.jpg",
                           "height": coins.shape[0], "width": coins.shape[1]})
    (root / IFILE).write_text(json.dumps(inst))
    qfile, afile = VQA_FILES[2]
    questions = json.loads((root / qfile).read_text())
    questions["questions"].append({"question_id": 9001, "image_id": EMPTY_IMAGE,
                                   "question": "Is there a cat in the picture?"})
    (root / qfile).write_text(json.dumps(questions))
    answers = json.loads((root / afile).read_text())
    answers["annotations"].append({
        "question_id": 9001, "image_id": EMPTY_IMAGE, "question_type": "is there a",
        "answer_type": "yes/no", "multiple_choice_answer": "no",
        "answers": [{"answer": "no", "answer_confidence": "yes", "answer_id": k + 1}
                    for k in range(10)]})
    (root / afile).write_text(json.dumps(answers))
    return root


def write_gqa_with_an_empty_graph(root):
    """The GQA fixture plus image 2500000 (coins), whose scene graph has no objects, and
    question 208 about it."""
    from PIL import Image

    root = write_gqa(root)
    coins = skimage_photo("coins")
    Image.fromarray(coins).save(root / "images" / "2500000.jpg", quality=92)
    graphs = json.loads((root / "val_sceneGraphs.json").read_text())
    graphs["2500000"] = {"width": coins.shape[1], "height": coins.shape[0], "objects": {}}
    (root / "val_sceneGraphs.json").write_text(json.dumps(graphs))
    questions = json.loads((root / "val_balanced_questions.json").read_text())
    questions["208"] = dict(questions["207"], imageId="2500000", question="Is there a cat?",
                            answer="no", fullAnswer="No, there is no cat.",
                            annotations={"question": {}, "answer": {}, "fullAnswer": {}})
    (root / "val_balanced_questions.json").write_text(json.dumps(questions))
    return root


CASES = {"vqav2": (write_coco_with_an_empty_image, "9001"),
         "gqa": (write_gqa_with_an_empty_graph, "208")}


@pytest.mark.parametrize("dataset", sorted(CASES))
def test_the_record_has_empty_regions_of_its_images_size(dataset, tmp_path):
    write, sid = CASES[dataset]
    r = records_by_id(dataset, write(tmp_path / "data"))[sid]
    h, w = r.image.shape[:2]
    for mask in (r.target_mask, r.evidence, r.distractor_mask, r.control):
        assert mask.shape == (h, w) and not mask.any()


@pytest.mark.parametrize("dataset", sorted(CASES))
def test_a_run_scores_every_method_and_metric_on_it(dataset, tmp_path, capsys):
    write, sid = CASES[dataset]
    root = write(tmp_path / "data")
    out = tmp_path / "run"
    p = in_process(["--models", MODEL, *loader_run(dataset), "--data-root", root, "--out", out,
                    "--quiet"], capsys)
    assert p.returncode == 0, p.stderr
    rows = [r for r in csv.DictReader((out / "results.csv").open()) if r["sample_id"] == sid]
    methods = {r["method"] for r in rows}
    assert len(methods) > 5
    for r in rows:
        if r["metric"] in metrics.available() and metrics.get(r["metric"]).kind == \
                "localisation" and not r["note"].startswith("not applicable"):
            assert r["value"] == "" and r["note"] == f"no {r['region']} region", r
    scored = {r["metric"] for r in rows if r["method"] == "cross_attn_gradcam" and r["value"]}
    assert {"deletion_auc", "insertion_auc", "vqa_keep_auc", "tie_fraction"} <= scored
