"""Counterfactual ground truth: exact re-rendering, the model's Δ per object, and the metrics."""
import numpy as np
import pytest
import torch

import methods
import metrics
from benchmark.engine.object_effects import object_effects, object_masks
from datasets import synthetic as syn
from datasets.loader_synthetic import SyntheticDataset


def test_removing_an_object_changes_only_its_pixels_to_what_lay_beneath():
    s = syn.generate(0, "test", 5)
    for k in range(1, len(s.objects) + 1):
        image, sem = s.without(k)
        gone = s.instance_map == k
        assert gone.any()
        assert np.array_equal(image[~gone], s.image[~gone])  # every other pixel unchanged
        assert np.array_equal(image[gone], s.background[gone])
        assert np.array_equal(sem[~gone], s.semantic_map[~gone])
        assert set(np.unique(sem[gone])) <= {0, 1}  # background or clutter
    # the background is the scene before its objects: it agrees with the image off the objects
    off = s.instance_map == 0
    assert np.array_equal(s.background[off], s.image[off])


def _objects():
    masks = []
    for i in range(4):
        m = np.zeros((16, 16), bool)
        m[i * 4:i * 4 + 3, 2:6] = True
        masks.append(m)
    return masks


def test_object_faithfulness_orders_objects_as_their_effects():
    of = metrics.get("object_faithfulness")
    masks = _objects()
    deltas = [3.0, -1.0, 2.0, 0.5]
    heat = np.zeros((16, 16))
    for m, w in zip(masks, (4.0, 0.1, 3.0, 1.0)):  # same order as the deltas
        heat[m] = w
    assert of(heat, masks, deltas) == pytest.approx(1.0)
    assert of(-heat + heat.max(), masks, deltas) == pytest.approx(-1.0)  # reversed on objects
    assert of(np.ones((16, 16)), masks, deltas) == 0.0  # no information
    assert np.isnan(of(heat, masks, [1.0] * 4))  # the model is indifferent to every object
    assert np.isnan(of(heat, masks[:2], deltas[:2]))  # two objects: ρ is ±1 by construction


def test_counterfactual_pointing_looks_for_the_largest_absolute_effect():
    cp = metrics.get("counterfactual_pointing")
    masks = _objects()
    heat = np.zeros((16, 16))
    heat[masks[1]] = 1.0
    assert cp(heat, masks, [0.5, -2.0, 1.0, 0.0], tolerance=0) == 1.0
    assert cp(heat, masks, [0.5, 0.1, 1.0, 0.0], tolerance=0) == 0.0
    assert np.isnan(cp(heat, masks, [0.0] * 4))


@pytest.fixture(scope="module")
def batch(trained_tiny):
    from benchmark.engine.batch_inputs import images as _images

    recs = [SyntheticDataset("test")[i] for i in range(10)]
    effects = object_effects(trained_tiny, recs, trained_tiny.preprocess, lambda items: None)
    return recs, effects, _images(recs, trained_tiny)


def test_effects_equal_one_image_at_a_time(trained_tiny, batch):
    recs, effects, _ = batch
    for r in recs[:4]:
        def logit(img):
            with torch.no_grad():
                return float(trained_tiny.itm_logits(trained_tiny.preprocess([img]),
                                                     [r.question])[0, 1])
        full = logit(r.image)
        ref = [full - logit(r.extra["without"](k)[0]) for k in range(1, len(r.extra["objects"]) + 1)]
        assert effects[r.sample_id]["delta"] == pytest.approx(ref, abs=1e-4)
    assert np.mean([abs(d) for e in effects.values() for d in e["delta"]]) > 0.1  # objects matter


def test_counterfactual_oracle_is_the_upper_bracket(trained_tiny, batch):
    recs, effects, images = batch
    cf = [(object_masks(r), effects[r.sample_id]["delta"]) for r in recs]
    maps = methods.get("counterfactual_oracle")(trained_tiny, images, [r.question for r in recs],
                                               counterfactuals=cf)
    of = metrics.get("object_faithfulness")
    scores = [of(m.numpy(), masks, d) for m, (masks, d) in zip(maps, cf)]
    scores = [s for s in scores if np.isfinite(s)]
    assert len(scores) >= 8 and np.mean(scores) > 0.9
    with pytest.raises(methods.NotApplicable):
        methods.get("counterfactual_oracle")(trained_tiny, images, ["q"] * len(recs))
