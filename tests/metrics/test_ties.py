"""Ties never follow raster order: one seeded permutation per sample, shared by every method."""
import numpy as np
import torch

from metrics._ties import max_tied, patch_order, tie_break, tie_fraction
from metrics.perturbation import SUBSTRATES


def test_a_constant_map_is_ordered_by_the_samples_seeded_permutation():
    perm = tie_break(["a", "b"], 144, seed=0)
    order = patch_order(torch.zeros(2, 12, 12), perm)
    assert torch.equal(order, perm)
    assert not torch.equal(order[0], torch.arange(144))  # not raster order
    assert not torch.equal(perm[0], perm[1])  # samples differ
    assert torch.equal(tie_break(["a"], 144, seed=0)[0], perm[0])  # same sample, same seed
    assert not torch.equal(tie_break(["a"], 144, seed=1)[0], perm[0])


def test_two_methods_tied_on_the_same_patches_order_them_alike():
    perm = tie_break(["s"], 16, seed=5)
    a = torch.zeros(1, 4, 4)
    b = torch.zeros(1, 4, 4)
    a[0, 3, 3] = 2.0
    b[0, 3, 3] = 7.0  # other scale, same ties
    oa, ob = patch_order(a, perm), patch_order(b, perm)
    assert oa[0, 0] == 15 and torch.equal(oa, ob)
    assert torch.equal(oa[0, 1:], perm[0][perm[0] != 15])  # the rest in permutation order


def test_distinct_values_ignore_the_permutation():
    maps = torch.rand(3, 5, 5, generator=torch.Generator().manual_seed(0))
    want = torch.argsort(maps.reshape(3, -1), dim=1, descending=True)
    assert torch.equal(patch_order(maps, tie_break(["x", "y", "z"], 25, 0)), want)


def test_tie_statistics():
    assert tie_fraction(np.arange(16.0)) == 0.0
    assert tie_fraction(np.zeros(16)) == 1.0
    m = np.arange(16.0)
    m[:4] = 0.0  # four patches share 0
    assert tie_fraction(m) == 4 / 16
    assert max_tied(m) == 0.0
    m[-1] = m[-2]
    assert max_tied(m) == 1.0


def test_a_constant_map_scores_like_random_on_every_ordering_metric(trained_tiny):
    """By symmetry a constant map's ties, broken by a uniformly random permutation, are
    scored like a random map in expectation. Four seeds of each on 32 questions: the two means
    agree within the CI of their difference (raster order deletes the top rows first)."""
    import metrics
    from benchmark.engine.batch_inputs import images as _images
    from benchmark.engine.stats import paired_test
    from datasets.loader_synthetic import SyntheticDataset
    from metrics.vqa import exact_match

    model = trained_tiny
    recs = [r for r in (SyntheticDataset("test")[i] for i in range(40))
            if r.extra["itm_label"] == 1][:32]
    images, questions = _images(recs, model), [r.question for r in recs]
    const = torch.zeros(len(recs), *model.grid)
    for name in ("deletion_auc", "insertion_auc", "vqa_keep_auc", "vqa_drop_auc"):
        fn = metrics.get(name)
        fn = fn.with_options(steps=8) if "steps" in fn.config else fn
        a, b = [], []
        for seed in range(4):
            noise = torch.rand(len(recs), *model.grid, generator=torch.Generator().manual_seed(seed))
            kw = dict(scorer=exact_match, seed=seed, start=SUBSTRATES["mean"])
            a.append(fn(model, images, questions, const, recs, **kw).values)
            b.append(fn(model, images, questions, noise, recs, **kw).values)
        test = paired_test(np.mean(a, 0), np.mean(b, 0))
        assert test["ci_low"] <= 0 <= test["ci_high"], (name, test)
    rank = metrics.get("relevance_rank")
    for r in recs[:8]:
        assert rank(np.zeros(model.grid), r.target_mask) == np.mean(r.target_mask)
