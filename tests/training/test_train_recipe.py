"""The training recipe's supervision signals, on generated scenes and hand-made inputs."""
import math

import numpy as np
import torch

from benchmark.models.tiny import TinyConfig, _tokenizer
from benchmark.training import (grounding_loss, evidence_patches, evidence_views,
                                    partial_views, patch_targets, word_patch_sets)
from datasets import synthetic as syn
from datasets.scene_questions import _plural


def test_word_patch_sets_select_the_patches_of_each_words_attribute():
    tok = _tokenizer()
    cfg = TinyConfig()
    s = syn.generate(0, "train", 5)
    classes = torch.from_numpy(patch_targets(s, cfg.patch_size))[None]  # (1, N, 3)
    colour = s.objects[0].colour
    shape = s.objects[0].shape
    words = ["is", colour, _plural(shape), "there"]
    ids = torch.tensor([tok.convert_tokens_to_ids(words)])
    sets, valid = word_patch_sets(tok, ids, classes)
    colour_patches = classes[0, :, 0] == list(syn.COLOURS).index(colour) + 1
    shape_patches = classes[0, :, 1] == syn.SHAPES.index(shape) + 1
    assert torch.equal(sets[0, 1], colour_patches) and colour_patches.any()
    assert torch.equal(sets[0, 2], shape_patches) and shape_patches.any()
    assert not sets[0, 0].any() and not sets[0, 3].any()
    assert valid[0].tolist() == [False, True, True, False]


def test_word_patch_sets_are_empty_for_an_attribute_not_in_the_image():
    tok = _tokenizer()
    s = syn.generate(0, "train", 5)
    classes = torch.from_numpy(patch_targets(s, 8))[None]
    absent = [c for c in syn.COLOURS if all(o.colour != c for o in s.objects)][0]
    sets, valid = word_patch_sets(tok, torch.tensor([[tok.convert_tokens_to_ids(absent)]]), classes)
    assert not sets.any() and not valid.any()


def test_grounding_loss_is_minus_log_head_mean_mass_on_the_word_patches():
    attn = torch.zeros(1, 2, 1, 1 + 4)  # one row, two heads, one token, CLS + 4 patches
    attn[0, 0, 0] = torch.tensor([0.2, 0.4, 0.4, 0.0, 0.0])
    attn[0, 1, 0] = torch.tensor([0.0, 0.1, 0.1, 0.4, 0.4])
    sets = torch.tensor([[[True, False, False, True]]])
    loss = grounding_loss([attn, attn], sets, sets.any(-1))
    mass = (0.4 + 0.1) / 2 + (0.0 + 0.4) / 2  # head mean on patches 0 and 3, CLS ignored
    assert math.isclose(loss.item(), -math.log(mass + 1e-6), rel_tol=1e-6)


def test_partial_views_hide_cls_and_keep_a_bounded_random_subset():
    rng = np.random.default_rng(0)
    atts = partial_views(2000, 144, rng, prob=0.3, min_keep=0.1)
    partial = atts[:, 0] == 0
    assert 0.25 < partial.float().mean().item() < 0.35
    kept = atts[partial, 1:].sum(1)
    assert kept.min().item() >= round(0.1 * 144) and kept.max().item() <= 144
    assert (atts[~partial] == 1).all()
    again = partial_views(2000, 144, np.random.default_rng(0), prob=0.3, min_keep=0.1)
    assert torch.equal(atts, again)


def test_evidence_patches_are_the_patches_touching_the_mask():
    mask = np.zeros((16, 16), bool)
    mask[7, 9] = True  # one pixel in patch (0, 1) of an 8-px grid
    mask[12:14, 2:4] = True  # patch (1, 0)
    assert evidence_patches(mask, 8).tolist() == [False, True, True, False]


def test_evidence_views_always_show_the_evidence_and_only_replace_chosen_rows():
    rng = np.random.default_rng(0)
    b, n = 400, 144
    base = partial_views(b, n, rng, prob=0.3, min_keep=0.1)
    evidence = torch.zeros(b, n, dtype=torch.bool)
    evidence[:, 10:18] = True
    evidence[::7] = False  # rows without evidence keep their view
    atts = evidence_views(base, evidence, rng, prob=0.5)
    changed = (atts != base).any(1)
    assert not changed[::7].any()
    ev_rows = (atts[:, 0] == 0) & evidence.any(1) & changed
    assert 0.35 < ev_rows.float().mean().item() < 0.55
    assert (atts[ev_rows][:, 1:][:, 10:18] == 1).all()  # the answer stays visible
    rest = atts[ev_rows][:, 1:].sum(1) - 8
    assert rest.min().item() < 10 and rest.max().item() > 100  # a random share of the rest
    rng = np.random.default_rng(0)
    again = evidence_views(partial_views(b, n, rng, 0.3, 0.1), evidence, rng, prob=0.5)
    assert torch.equal(atts, again)  # seeded
