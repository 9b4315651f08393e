"""The size-matched grounding control and the chance-corrected pointing game."""
import numpy as np
import pytest

import metrics
from datasets.control import ids_in, instance_objects, matched_control
from datasets.loader_synthetic import SyntheticDataset


@pytest.fixture(scope="module")
def records():
    data = SyntheticDataset("test")
    return [data[i] for i in range(140)]


def test_control_has_the_targets_object_count_and_never_an_evidence_object(records):
    have = 0
    for r in records:
        inst = r.extra["instance_map"]
        targets, evidence = ids_in(inst, r.target_mask), ids_in(inst, r.evidence)
        chosen = ids_in(inst, r.control)
        assert not (r.control & r.evidence).any()
        if chosen:
            have += 1
            assert len(chosen) == len(targets) and not set(chosen) & set(evidence)
        else:  # no target (exist-"no") or too few other objects
            assert not targets or len(instance_objects(inst)) - len(evidence) < len(targets)
    assert have >= 0.7 * len(records)


def test_control_matches_the_target_size_better_than_the_distractor(records):
    ctrl, dist = [], []
    for r in records:
        if r.control.any():
            t = r.target_mask.sum()
            ctrl.append(abs(np.log(r.control.sum() / t)))
            dist.append(abs(np.log(r.distractor_mask.sum() / t)))
    assert np.mean(ctrl) < 0.5 * np.mean(dist)


def test_a_uniform_random_point_hits_target_and_control_equally_often(records):
    """The bias the control removes: a point that ignores the image hits the target 0.14–0.17
    of the time against 0.08 for the single distractor; the control is within noise of it."""
    from metrics.pointing_game import reach

    tol = 15 * 96 / 224
    t = [reach(r.target_mask, tol).mean() for r in records if r.control.any()]
    c = [reach(r.control, tol).mean() for r in records if r.control.any()]
    d = [reach(r.distractor_mask, tol).mean() for r in records if r.control.any()]
    assert abs(np.mean(t) - np.mean(c)) < 0.25 * (np.mean(t) - np.mean(d))


def test_control_is_seeded_and_picks_the_closest_areas():
    objs = {k: np.zeros((10, 10), bool) for k in range(1, 6)}
    for k, n in zip(objs, (20, 4, 19, 5, 30)):
        objs[k].flat[:n] = True  # areas 20, 4, 19, 5, 30 (masks overlap: only areas matter)
    mask, chosen = matched_control(objs, [1, 2], [5], seed=0, sample_id="x", shape=(10, 10))
    assert sorted(chosen) == [3, 4]  # 19 ≈ 20 and 5 ≈ 4; 5 is evidence
    again, _ = matched_control(objs, [1, 2], [5], seed=0, sample_id="x", shape=(10, 10))
    assert np.array_equal(mask, again)
    empty, none = matched_control(objs, [1, 2, 3], [4, 5], seed=0, sample_id="x",
                                  shape=(10, 10))
    assert not empty.any() and none == []  # fewer candidates than targets: no control


def test_an_image_without_objects_has_an_empty_control_of_its_own_size():
    mask, chosen = matched_control({}, [], [], seed=0, sample_id="x", shape=(427, 640))
    assert mask.shape == (427, 640) and not mask.any() and chosen == []


def test_pointing_above_chance_subtracts_the_random_point_hit_rate():
    above = metrics.get("pointing_game_above_chance")
    mask = np.zeros((20, 20), bool)
    mask[:5, :5] = True
    heat = np.zeros((20, 20))
    heat[2, 2] = 1.0
    assert above(heat, mask, tolerance=0) == pytest.approx(1 - 25 / 400)
    heat = np.zeros((20, 20))
    heat[15, 15] = 1.0
    assert above(heat, mask, tolerance=0) == pytest.approx(-25 / 400)


def test_tolerance_zero_means_the_point_lies_in_the_mask():
    pg = metrics.get("pointing_game")
    mask = np.zeros((20, 20), bool)
    mask[5, 5] = True
    heat = np.zeros((20, 20))
    heat[5, 5] = 1.0
    assert pg(heat, mask, tolerance=0) == 1.0
    heat = np.zeros((20, 20))
    heat[5, 6] = 1.0
    assert pg(heat, mask, tolerance=0) == 0.0 and pg(heat, mask, tolerance=1.5) == 1.0
