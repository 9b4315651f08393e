"""The embedded PNP-VQA (``pnp-vqa-tiny``): shipped and sha256-checked, the default downstream
on the synthetic data, reading the patches the map selects, and rebuilt by its training
command."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import datasets
from benchmark.cli.main import main
from benchmark.models import CHECKPOINT_DIR, pnp_tiny
from benchmark.core.errors import MissingWeights
from benchmark.models.pnp_pipelines import load_pipeline, missing_pipeline
from benchmark.models.pnp_vqa_pipeline import decode_text
from benchmark.training.pnp_data import caption, patch_objects
from benchmark.training.pnp_train import PnpTrainConfig, train_pnp_tiny
from datasets.synthetic import SceneObject
from metrics.vqa import exact_match


@pytest.fixture(scope="module")
def pipe():
    return load_pipeline("pnp-vqa-tiny")


@pytest.fixture(scope="module")
def records():
    data = datasets.get("synthetic")(split="test", seed=0)
    return [data[i] for i in range(40)]


def test_captions_name_the_two_most_covered_objects_and_their_relation():
    objs = [SceneObject("red", "circle", "large", 20, 50, 12),
            SceneObject("blue", "square", "small", 70, 52, 8)]
    assert caption(objs, np.array([0, 0])) == "nothing"
    assert caption(objs, np.array([2, 0, 2, 1])) == "a small blue square right of a large red circle"
    assert caption(objs, np.array([1, 2])) == "a large red circle left of a small blue square"
    inst = np.zeros((16, 16), np.int16)
    inst[:8, :2] = 1  # a quarter of the first 8×8 patch: it counts
    inst[8:, 8:9] = 2  # an eighth of the last: it does not
    assert patch_objects(inst, 8).tolist() == [1, 0, 0, 0]


def _patch_map(mask: np.ndarray, grid: int) -> torch.Tensor:
    h = mask.shape[0] // grid
    return torch.from_numpy(mask.reshape(grid, h, grid, h).any(axis=(1, 3)).astype(np.float32))


def test_the_answer_follows_the_patches_the_map_selects(pipe, records):
    """Maps on the question's evidence give better answers than maps on everything else: the
    downstream reads the map, not the image as a whole (measured on these questions: 0.75 and
    0.58 on the first 24)."""
    recs = [r for r in records if r.evidence_mask is not None and r.evidence_mask.any()]
    x = pipe.preprocessing([r.image for r in recs])
    on = torch.stack([_patch_map(r.evidence_mask, 12) for r in recs])
    acc = {}
    for name, maps in (("on", on), ("off", 1.0 - on)):
        answers, counts = pipe.answers(x, [r.question for r in recs], maps,
                                       [r.sample_id for r in recs], 5, 10, seed=0)
        assert all(c >= 1 for c in counts)
        acc[name] = np.mean([exact_match(a, r.answers) for a, r in zip(answers, recs)])
    assert acc["on"] >= 0.6 and acc["on"] - acc["off"] >= 0.1, acc


def test_it_is_the_default_downstream_on_the_synthetic_data(tmp_path):
    out = tmp_path / "run"
    assert main(["--models", "blip-itm-tiny", "--methods", "cross_attn_gradcam", "--metrics",
                 "pnp_vqa_accuracy", "--limit", "2", "--pnp-captions", "3", "--out", str(out),
                 "--quiet", "--no-report"]) == 0
    rows = pd.read_csv(out / "results.csv")
    rows = rows[rows.metric == "pnp_vqa_accuracy"]
    assert len(rows) == 2 and rows.value.between(0, 1).all() and rows.note.isna().all()
    assert main(["--models", "blip-itm-tiny", "--methods", "cross_attn_gradcam", "--metrics",
                 "pnp_vqa_accuracy", "--limit", "2", "--pnp-vqa", "none", "--out",
                 str(tmp_path / "none"), "--quiet", "--no-report"]) == 0
    rows = pd.read_csv(tmp_path / "none" / "results.csv")
    note = rows[rows.metric == "pnp_vqa_accuracy"].note.iloc[0]
    assert note.startswith("not applicable: no PNP-VQA captioner")


def test_a_changed_checkpoint_is_refused_with_the_command_that_rebuilds_it(tmp_path,
                                                                         monkeypatch):
    shipped = tmp_path / "checkpoints"
    shutil.copytree(CHECKPOINT_DIR, shipped, ignore=shutil.ignore_patterns("*itm*"))
    data = bytearray((shipped / "pnp-vqa-tiny.pt").read_bytes())
    data[-100] ^= 1
    (shipped / "pnp-vqa-tiny.pt").write_bytes(bytes(data))
    monkeypatch.setattr(pnp_tiny, "CHECKPOINT_DIR", shipped)
    with pytest.raises(MissingWeights, match="train --model pnp-vqa-tiny"):
        load_pipeline("pnp-vqa-tiny")
    (shipped / "pnp-vqa-tiny.pt").unlink()
    assert "run `python -m benchmark train --model pnp-vqa-tiny`" in \
        missing_pipeline("pnp-vqa-tiny")


def test_a_changed_tokenizer_is_refused(tmp_path, monkeypatch):
    """The weights' token ids mean the shipped tokenizers' pieces: a vocabulary with two words
    swapped would load and caption nonsense, so the recorded sha256 of each file is checked."""
    shipped = tmp_path / "checkpoints"
    shutil.copytree(CHECKPOINT_DIR, shipped, ignore=shutil.ignore_patterns("*itm*"))
    folder = shipped / "pnp-vqa-tiny-tokenizers"
    monkeypatch.setattr(pnp_tiny, "CHECKPOINT_DIR", shipped)
    monkeypatch.setattr(pnp_tiny, "TOKENIZERS", folder)
    assert load_pipeline("pnp-vqa-tiny").name == "pnp-vqa-tiny"  # the copy itself loads
    words = (folder / "caption_vocab.txt").read_text().splitlines()
    words[-1], words[-2] = words[-2], words[-1]
    (folder / "caption_vocab.txt").write_text("\n".join(words) + "\n")
    with pytest.raises(MissingWeights, match="caption_vocab.txt is missing or does not match"):
        load_pipeline("pnp-vqa-tiny")


def test_training_writes_a_checkpoint_the_pipeline_loads(tmp_path, monkeypatch):
    """A reduced run of the training command's code (few steps, few scenes): tokenizers,
    checkpoint and record are written, and the loader reads them back to the same weights."""
    dest = tmp_path / "pnp-vqa-tiny.pt"
    tcfg = PnpTrainConfig(caption_steps=3, answer_steps=3, pool_size=256, batch_size=4,
                          eval_scenes=4)
    meta = train_pnp_tiny(dest, tcfg, progress=False)
    record = json.loads(dest.with_suffix(".json").read_text())
    assert record["sha256"] == meta["sha256"] and record["train_config"]["caption_steps"] == 3
    assert 0 <= record["caption_accuracy"] <= 1 and 0 <= record["answer_accuracy"] <= 1
    monkeypatch.setattr(pnp_tiny, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(pnp_tiny, "TOKENIZERS", tmp_path / "pnp-vqa-tiny-tokenizers")
    loaded = pnp_tiny.load_tiny()
    assert loaded.info["sha256"] == meta["sha256"]
    state = torch.load(dest, map_location="cpu")
    assert all(torch.equal(v, loaded.captioner.state_dict()[k])
               for k, v in state["captioner"].items())


def test_batched_greedy_captions_equal_the_per_question_route(pipe, records):
    """Greedy decoding lets a batch be captioned at once; each question's captions are still
    those of its own seed, whatever shares its batch, over every round of draws."""
    recs = records[:6]
    x = pipe.preprocessing([r.image for r in recs])
    probs = pipe.patch_probabilities(torch.rand(6, 12, 12, generator=torch.Generator()
                                                .manual_seed(1)), 5)
    seeds = [11, 12, 13, 14, 15, 16]
    batched = pipe.batched_captions(x, probs, 5, 8, seeds)
    alone = [pipe.captions(x[i:i + 1], probs[i:i + 1], 5, 8, s) for i, s in enumerate(seeds)]
    assert batched == alone and all(batched)
    assert pipe.batched_captions(x[2:4], probs[2:4], 5, 8, seeds[2:4]) == batched[2:4]


def test_batched_sampled_captions_do_not_depend_on_the_batch(pipe, records):
    """Sampled decoding of a batch draws each caption from its own seeded noise (Gumbel-max):
    a question's captions are the same alone or beside others."""
    import dataclasses

    sampled = dataclasses.replace(pipe, settings=dataclasses.replace(pipe.settings, top_k=50))
    x = sampled.preprocessing([r.image for r in records[:4]])
    probs = torch.ones(4, 144)
    together = sampled.batched_captions(x, probs, 5, 6, [1, 2, 3, 4])
    assert sampled.batched_captions(x[1:3], probs[1:3], 5, 6, [2, 3]) == together[1:3]
    assert together != pipe.batched_captions(x, probs, 5, 6, [1, 2, 3, 4])  # not greedy


def test_gumbel_noise_samples_the_softmax():
    """The processor's argmax over logits plus the rows' noise is a draw from the top-k
    softmax: frequencies over many rows match the probabilities."""
    from benchmark.models.pnp_vqa_pipeline import RowNoise, row_noise

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -3.0]]).repeat(4000, 1)
    noise = RowNoise(row_noise(range(4000), 1, 5), top_k=4, start=0)
    picks = noise(torch.zeros(4000, 0, dtype=torch.long), logits).argmax(-1)
    freq = torch.bincount(picks, minlength=5).double() / 4000
    expected = torch.softmax(torch.tensor([2.0, 1.0, 0.0, -1.0]), 0).double()
    assert freq[4] == 0 and torch.allclose(freq[:4], expected, atol=0.03)


def test_every_question_reads_the_same_number_of_passages(pipe, records, monkeypatch):
    """Equal reading: whatever the map, the answerer reads exactly num_captions passages (the
    distinct captions cycled); a concentrated map used to give it fewer than a spread one."""
    from benchmark.models.pnp_vqa_pipeline import PnpVqa

    read = []
    original = PnpVqa.answer
    monkeypatch.setattr(PnpVqa, "answer",
                        lambda self, q, caps: read.append(list(caps)) or original(self, q, caps))
    recs = records[:8]
    x = pipe.preprocessing([r.image for r in recs])
    point = torch.zeros(8, 12, 12)
    point[:, 5, 5] = 1.0  # one patch: one caption, over and over
    for maps in (point, torch.ones(8, 12, 12)):
        read.clear()
        _, distinct = pipe.answers(x, [r.question for r in recs], maps,
                                   [r.sample_id for r in recs], 5, 12, seed=0)
        assert [len(p) for p in read] == [12] * 8
        assert [len(set(p)) for p in read] == distinct and all(1 <= d <= 12 for d in distinct)
    assert max(distinct) > 1


def test_caption_text_equals_the_tokenizers_own_decoding_without_special_tokens(pipe):
    tokenizer = pipe.captioner.tokenizer
    special = sorted(set(tokenizer.all_special_ids))
    ids = torch.randint(0, len(tokenizer), (6, 14), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = tokenizer.bos_token_id
    ids[::2, 5] = special[0]  # special ids inside the text and at its end
    ids[1::2, -3:] = tokenizer.sep_token_id
    assert decode_text(tokenizer, ids) == tokenizer.batch_decode(ids, skip_special_tokens=True)


def test_memoised_answers_are_the_computed_ones_and_reused_across_calls(pipe, records):
    """PNP-VQA's answers kept by their inputs: the same answers as computed, a question
    computed once whichever batch asks again, and a changed map computed afresh."""
    from benchmark.engine.cache import MemoryCache
    from metrics.pnp_vqa import memoised_answers

    x = pipe.preprocessing([r.image for r in records[:6]])
    qs, ids = [r.question for r in records[:6]], [r.sample_id for r in records[:6]]
    maps = torch.rand(6, 12, 12, generator=torch.Generator().manual_seed(0))
    direct = pipe.answers(x, qs, maps, ids, 5, 4, 0)
    memo, asked = MemoryCache(), []

    class Counting:  # the pipeline, counting the questions it is asked to answer
        name, settings = pipe.name, pipe.settings

        def answers(self, images, questions, *args):
            asked.append(len(questions))
            return pipe.answers(images, questions, *args)

    assert memoised_answers(Counting(), memo, x, qs, maps, ids, 5, 4, 0, None) == direct
    assert memoised_answers(Counting(), memo, x[2:], qs[2:], maps[2:], ids[2:], 5, 4, 0,
                            None) == (direct[0][2:], direct[1][2:])
    changed = maps.clone()
    changed[1] = maps[1].flip(0)
    again = memoised_answers(Counting(), memo, x, qs, changed, ids, 5, 4, 0, None)
    assert asked == [6, 1] and again[0][1] == pipe.answers(x[1:2], qs[1:2], changed[1:2],
                                                            ids[1:2], 5, 4, 0)[0][0]
