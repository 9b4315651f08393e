import hashlib
import json
from collections import Counter

import numpy as np
import pytest

from datasets import synthetic as syn

GOLDEN = {"1.0": "ce31151e288c9a109e2637eff23d37809da10fd49095838ecfbd7eb2258d87e5",
          "1.1": "86a5f93a71940340e5f04dccdbc435c4f7696ce69fd58aab14200adfa89297b6"}


def _digest(samples):
    h = hashlib.sha256()
    for s in samples:
        for part in (s.image, s.target_mask, s.semantic_map):
            h.update(part.tobytes())
        h.update(s.question.encode())
        h.update(s.answer.encode())
    return h.hexdigest()


def test_golden_hash_pins_the_generator():
    got = _digest(syn.generate(0, "test", i) for i in range(14))
    assert got == GOLDEN[syn.GENERATOR_VERSION], "generator output changed: bump GENERATOR_VERSION"


def test_per_sample_seeding_is_independent_of_order():
    a = syn.generate(3, "val", 41)
    [syn.generate(3, "val", i) for i in range(5)]
    b = syn.generate(3, "val", 41)
    assert _digest([a]) == _digest([b])
    assert _digest([syn.generate(3, "train", 41)]) != _digest([a])
    assert _digest([syn.generate(4, "val", 41)]) != _digest([a])


@pytest.fixture(scope="module")
def samples():
    return [syn.generate(0, "test", i) for i in range(210)]


def test_all_families_and_balanced_yes_no(samples):
    fams = Counter(s.family for s in samples)
    assert set(fams) == set(syn.FAMILIES) and min(fams.values()) == 30
    yn = Counter(s.answer for s in samples if s.answer in ("yes", "no"))
    assert abs(yn["yes"] - yn["no"]) <= 0.2 * sum(yn.values())


def test_masks_are_exact_object_pixels(samples):
    for s in samples:
        ids = set(np.unique(s.instance_map[s.target_mask]))
        assert 0 not in ids
        for k in ids:  # a target mask is whole objects, never part of one
            assert (s.target_mask[s.instance_map == k]).all()
        assert not (s.target_mask & s.distractor_mask).any()
        assert (s.target_mask <= s.evidence_mask).all()
        # semantic map: shape classes exactly on object pixels, colour not encoded
        obj = s.instance_map > 0
        assert (s.semantic_map[obj] >= 2).all() and (s.semantic_map[~obj] <= 1).all()


def test_targets_are_the_objects_of_the_last_program_step(samples):
    """CLEVR-XAI's GT Unique: both objects of a comparison or relation check, only the queried
    object of a spatial-relation question (its anchor is evidence, not target)."""
    def n_objects(mask, s):
        return len(set(np.unique(s.instance_map[mask])) - {0})

    for s in samples:
        if s.family in ("compare", "relation_check"):
            assert n_objects(s.target_mask, s) == 2 and (s.target_mask == s.evidence_mask).all()
        elif s.family == "spatial_relation":
            assert n_objects(s.target_mask, s) == 1 and n_objects(s.evidence_mask, s) == 2
        elif s.family in ("query_colour", "query_shape"):
            assert n_objects(s.target_mask, s) == 1


def test_every_question_has_a_near_miss_distractor(samples):
    for s in samples:
        assert s.distractor_mask.any(), s.question
        (k,) = set(np.unique(s.instance_map[s.distractor_mask]))
        d = s.objects[k - 1]
        targets = [s.objects[t - 1] for t in np.unique(s.instance_map[s.target_mask])]
        if not targets:  # "is there a red square?" -> no: a red thing or a square is present
            targets = [syn.SceneObject(**s.program["referents"][0], size="", x=0, y=0, r=0)]
        assert any(d.colour == t.colour or d.shape == t.shape for t in targets), s.question


def test_hard_negatives_have_no_matching_referent(samples):
    for s in samples:
        if s.itm_label == 1:
            assert s.itm_negative and s.itm_negative != s.question
            assert s.target_mask.any()
        else:
            assert s.family == "exist" and s.answer == "no" and not s.target_mask.any()


def test_clutter_present_and_never_asked_about(samples):
    assert all((s.semantic_map == 1).any() for s in samples[:20])
    assert not any("clutter" in s.question for s in samples)


def test_every_question_tokenises_without_unknown_words(samples):
    from benchmark.models.tiny import _tokenizer

    tok = _tokenizer()
    for s in samples:
        for q in (s.question, s.itm_negative or ""):
            assert tok.unk_token_id not in tok(q).input_ids, q


def test_export_vqav2_format(tmp_path):
    from pycocotools import mask as mask_utils

    from datasets.export import export_vqav2

    export_vqav2(tmp_path, n=7, seed=0)
    qs = json.loads((tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())
    anns = json.loads((tmp_path / "v2_mscoco_val2014_annotations.json").read_text())
    inst = json.loads((tmp_path / "instances_val2014.json").read_text())
    evidence = json.loads((tmp_path / "evidence.json").read_text())
    assert len(qs["questions"]) == len(anns["annotations"]) == 7
    assert all(len(a["answers"]) == 10 for a in anns["annotations"])
    for q in qs["questions"]:
        assert (tmp_path / "val2014" / f"COCO_val2014_{q['image_id']:012d}.jpg").exists()
    s = syn.generate(0, "test", 0)
    ids = evidence[str(qs["questions"][0]["question_id"])]
    by_id = {a["id"]: a for a in inst["annotations"]}
    union = np.zeros_like(s.target_mask)
    for i in ids:
        union |= mask_utils.decode(by_id[i]["segmentation"]).astype(bool)
    assert (union == s.target_mask).all()
