"""``python -m benchmark train --model difnet-itm-base``: BLIP base + DIFNet's MultiLevelEncoder
fine-tuned on image-question matching with hard negatives, on the synthetic data exported in
VQA v2 + COCO format, with a reduced-depth base (1 ViT block, 3 text layers) from a random
checkpoint in LAVIS's layout; SIGKILLed once its first checkpoint of three is on disk and
restarted, or stopped after one step and rerun, it ends where an uninterrupted run ends. On the
real-photo VQA v2 fixture, the COCO panoptic stream reaches the fusion encoder."""
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmark.cli.main import main
from benchmark.models.pretrained import CHECKPOINTS, DIFNET_FUSION, _blip_loader
from benchmark.training.finetune import LAST, RESULT
from datasets.export import export_vqav2
from tests.fixtures.coco_fixture import CATEGORIES, IMAGES, VQA_FILES, write_coco_vqa, write_panoptic
from tests.fixtures.real_layout import bert_vocab, lavis_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def reduced_base(tmp_path):
    """A random BLIP base in LAVIS's layout at reduced depth, and the fine-tuning command's
    arguments that read it: (args, weights folder, tokenizer folder)."""
    tokenizer = bert_vocab(tmp_path / "tokenizer" / "vocab.txt").parent
    weights = tmp_path / "weights"
    lavis_checkpoint(weights / CHECKPOINTS["blip-itm-base"][1], "base", tokenizer, vit_depth=1,
                     text_layers=3)
    args = ["train", "--model", "difnet-itm-base", "--weights-dir", str(weights),
            "--tokenizer-dir", str(tokenizer), "--batch-size", "2", "--warmup", "1",
            "--vit-depth", "1", "--text-layers", "3", "--device", "cpu", "--quiet"]
    return args, weights, tokenizer


def read_and_remove(out, name, pick=lambda state: state):
    """What ``pick`` takes from the file ``name`` of the run folder ``out``; the folder is then
    removed, since a reduced base's resumable checkpoint (weights and Adam's moments) is about
    1 GB and a test keeping every run's folder would hold several GB of disk."""
    state = pick(torch.load(out / name, weights_only=False))
    shutil.rmtree(out)
    return state


# two minutes of the default suite's 25 (three fine-tuning runs); the main run's resume is held
# by tests/engine/test_resume.py and test_workers.py in the default suite
@pytest.mark.slow
def test_finetune_sigkilled_or_stopped_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path):
    """The kill a preempted job gets: SIGKILL once the first checkpoint is on disk, mid-way
    through the next step; the restarted command resumes from that checkpoint. And a clean
    ``--stop-after 1``, rerun. Both end with the uninterrupted run's weights, which the fused
    loader reads. Every run is a process of its own, so all see the same thread settings."""
    data = export_vqav2(tmp_path / "vqa", n=8, split="train", coco_split="train")
    base, weights, tokenizer = reduced_base(tmp_path)
    cmd = [sys.executable, "-m", "benchmark", *base, "--dataset", "vqav2", "--data-root",
           str(data), "--steps", "3", "--checkpoint-every", "1"]

    def run(out, *extra):
        subprocess.run(cmd + ["--out", str(out), *extra], cwd=ROOT, check=True,
                       capture_output=True)

    run(tmp_path / "straight")
    # the result is what the fused loader reads (every key checked)
    model = _blip_loader("difnet-itm-base", "base", RESULT, vit_depth=1, text_layers=3,
                         fusion=DIFNET_FUSION)(weights_dir=str(tmp_path / "straight"),
                                               tokenizer_dir=str(tokenizer))
    assert model.side_input_classes("segmentation") == 133
    del model
    a = read_and_remove(tmp_path / "straight", RESULT)
    init = torch.load(weights / CHECKPOINTS["blip-itm-base"][1])["model"]
    assert not torch.equal(a["itm_head.weight"], init["itm_head.weight"])  # it trained

    killed = tmp_path / "killed"
    p = subprocess.Popen(cmd + ["--out", str(killed)], cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while not (killed / LAST).exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL and not (killed / RESULT).exists()
    assert torch.load(killed / LAST, weights_only=False)["step"] in (1, 2)
    # what a kill during the next checkpoint's write would have left: removed on restart
    stale = killed / f".{LAST}.tmp-{p.pid}"
    stale.write_bytes(b"partial")
    run(killed)
    assert not stale.exists()
    b = read_and_remove(killed, RESULT)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    stopped = tmp_path / "stopped"
    run(stopped, "--stop-after", "1")
    assert (stopped / LAST).exists() and not (stopped / RESULT).exists()
    run(stopped)  # resumes at step 1
    c = read_and_remove(stopped, RESULT)
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_a_checkpoint_of_other_settings_is_refused(tmp_path, capsys):
    from benchmark.training.finetune import FinetuneConfig

    out = tmp_path / "out"
    out.mkdir()
    torch.save({"digest": "other", "step": 1}, out / LAST)
    data = export_vqav2(tmp_path / "vqa", n=4, split="train", coco_split="train")
    assert FinetuneConfig().digest() != "other"
    assert main(["train", "--model", "difnet-itm-base", "--dataset", "vqav2", "--data-root",
                 str(data), "--steps", "2", "--out", str(out), "--quiet", "--device", "cpu"]) == 2
    assert "checkpoint of other fine-tuning settings" in capsys.readouterr().err


WRITTEN = {i for i, (_, _, written) in IMAGES.items() if written}


def test_finetune_trains_on_what_the_coco_panoptic_pngs_say(tmp_path):
    """``--segmentation panoptic:PATH`` on VQA v2 + COCO files of real photographs: the
    same fine-tuning step with the same PNGs gives the same weights, and with the file's 133
    classes listed in another order (each segment in another class) other fusion weights."""
    root = write_coco_vqa(tmp_path / "coco")
    for name in VQA_FILES[2]:  # training needs every image: drop the question whose file is missing
        obj = json.loads((root / name).read_text())
        key = "questions" if "questions" in obj else "annotations"
        obj[key] = [q for q in obj[key] if q["image_id"] in WRITTEN]
        (root / name).write_text(json.dumps(obj))
    fillers = [c for c in range(1, 300) if c not in CATEGORIES][:133 - len(CATEGORIES)]
    listed = {**CATEGORIES, **{c: f"class {c}" for c in fillers}}
    reordered = dict(reversed(list(listed.items())))
    base, _, _ = reduced_base(tmp_path)

    def fusion_after_one_step(categories, out):
        pan = write_panoptic(tmp_path / out / "panoptic", categories)
        assert main(base + ["--dataset", "vqav2", "--data-root", str(root), "--split", "val",
                            "--segmentation", f"panoptic:{pan}", "--steps", "1",
                            "--out", str(tmp_path / out)]) == 0
        return read_and_remove(tmp_path / out, RESULT,
                               lambda state: {k: v for k, v in state.items() if "fusion" in k})

    a, again, other = (fusion_after_one_step(c, o) for c, o in
                       ((listed, "a"), (listed, "again"), (reordered, "other")))
    assert a and all(torch.equal(a[k], again[k]) for k in a)
    assert any(not torch.equal(a[k], other[k]) for k in a)


def test_a_missing_image_is_refused_before_any_step(tmp_path, capsys):
    root = write_coco_vqa(tmp_path / "coco")  # question 5001's image file is not there
    out = tmp_path / "out"
    assert main(["train", "--model", "difnet-itm-base", "--dataset", "vqav2", "--data-root",
                 str(root), "--split", "val", "--steps", "1", "--out", str(out), "--quiet",
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "1 of 7 questions have no image file (first: question 5001" in err
    assert err.count("\n") == 1 and not (out / LAST).exists()


def test_accumulation_reads_that_many_batches_per_step_and_bf16_engages(tmp_path):
    data = export_vqav2(tmp_path / "vqa", n=8, split="train", coco_split="train")
    base, _, _ = reduced_base(tmp_path)

    def step(out, *extra):
        assert main(base + ["--dataset", "vqav2", "--data-root", str(data), "--steps", "1",
                            "--out", str(tmp_path / out), *extra]) == 0
        return read_and_remove(tmp_path / out, LAST, lambda state: {
            "cursor": state["cursor"], "model": state["model"]})

    fp32, accumulated = step("fp32"), step("acc", "--accumulate", "2")
    assert fp32["cursor"] == 2 and accumulated["cursor"] == 4  # two batches of two
    bf16 = step("bf16", "--precision", "bf16")
    assert bf16["cursor"] == 2 and all(torch.isfinite(v).all() for v in bf16["model"].values()
                                       if v.is_floating_point())
    assert any(not torch.equal(fp32["model"][k], bf16["model"][k]) for k in fp32["model"])
