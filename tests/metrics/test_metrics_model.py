"""Relevance metrics against plain references; deletion/insertion and VQA curves on toy models
whose curves are known analytically."""

import numpy as np
import pytest
import torch

import metrics
from metrics.perturbation import SUBSTRATES, step_counts
from tests.fixtures.toys import patch_mean_toy


def test_relevance_mass_and_rank_against_plain_loops():
    rng = np.random.default_rng(0)
    heat = rng.normal(size=(12, 12))
    mask = np.zeros((12, 12), bool)
    mask[2:6, 3:9] = True
    pos = np.clip(heat, 0, None)
    assert metrics.get("relevance_mass")(heat, mask) == pytest.approx(pos[mask].sum() / pos.sum())
    k = mask.sum()
    flat = sorted(range(144), key=lambda i: (-heat.flat[i], i))[:k]  # no ties in this map
    assert metrics.get("relevance_rank")(heat, mask) == pytest.approx(mask.flat[flat].sum() / k)


def test_relevance_rank_credits_ties_by_their_expectation():
    rank = metrics.get("relevance_rank")
    mask = np.zeros((12, 12), bool)
    mask[:3, :4] = True  # top-left: raster order would put it first
    assert rank(np.zeros((12, 12)), mask) == pytest.approx(mask.mean())  # constant: the share
    heat = np.zeros((12, 12))
    heat[5:9, 5:8] = 1.0  # 12 pixels above, and 132 tied at 0 for the 0 remaining slots
    assert rank(heat, mask) == 0.0
    heat[5, 5] = 0.0
    heat[0, 0] = heat[11, 11] = 0.5
    # 11 above (none in the mask), need 1 of the 2 tied at 0.5, one of which is in the mask
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(4000):  # Monte Carlo over random tie-breaks, a plain reference
        key = rng.permutation(144)
        top = sorted(range(144), key=lambda i: (-heat.flat[i], key[i]))[:12]
        draws.append(mask.flat[top].sum() / 12)
    assert rank(heat, mask) == pytest.approx(0.5 / 12)
    assert rank(heat, mask) == pytest.approx(np.mean(draws), abs=0.004)


@pytest.mark.parametrize("name", ["relevance_mass", "relevance_rank"])
def test_relevance_edge_cases_are_nan(name):
    fn = metrics.get(name)
    assert np.isnan(fn(np.ones((4, 4)), np.zeros((4, 4), bool)))
    bad = np.ones((4, 4))
    bad[0, 0] = np.inf
    assert np.isnan(fn(bad, np.ones((4, 4), bool)))
    if name == "relevance_mass":
        assert np.isnan(fn(-np.ones((4, 4)), np.ones((4, 4), bool)))


def test_deletion_curve_matches_the_closed_form():
    w = np.arange(1, 17, dtype=np.float64)
    model = patch_mean_toy(w)
    images = torch.ones(1, 3, 8, 8)
    maps = torch.as_tensor(w).reshape(1, 4, 4)  # perfectly faithful: most weight first
    out = metrics.get("deletion_auc")(model, images, ["q"], maps)
    order = np.sort(w)[::-1]
    expected = np.concatenate([[1.0], 1 - np.cumsum(order) / w.sum()])
    assert np.allclose(out.curves[0], expected)
    assert out.values[0] == pytest.approx(metrics.auc(expected))
    worst = metrics.get("deletion_auc")(model, images, ["q"], -maps)
    assert worst.values[0] > out.values[0]  # the reversed order deletes evidence last


def test_deletion_steps_and_ties():
    assert step_counts(144, 16).tolist()[:3] == [0, 9, 18] and step_counts(144, 16)[-1] == 144
    assert step_counts(10, 16).tolist() == list(range(11))  # never less than one patch per step
    model = patch_mean_toy(np.ones(16))
    flat = torch.zeros(1, 4, 4)  # all ties: any order removes a quarter per step
    out = metrics.get("deletion_auc").with_options(steps=4)(model, torch.ones(1, 3, 8, 8),
                                                             ["q"], flat)
    assert np.allclose(out.curves[0], [1, 0.75, 0.5, 0.25, 0])


def test_deletion_breaks_ties_by_the_samples_permutation_not_raster_order():
    from metrics._ties import tie_break

    w = np.full(16, 0.01)
    w[0] = 10.0  # all the evidence top-left: raster order would delete it first
    model = patch_mean_toy(w)

    class Rec:
        sample_id = "s-7"

    flat = torch.zeros(1, 4, 4)
    out = metrics.get("deletion_auc")(model, torch.ones(1, 3, 8, 8), ["q"], flat, [Rec()],
                                      seed=3)
    perm = tie_break(["s-7"], 16, 3)[0].tolist()
    expected = np.concatenate([[1.0], 1 - np.cumsum(w[perm]) / w.sum()])
    assert perm[0] != 0 and np.allclose(out.curves[0], expected)


def test_insertion_starts_blurred_and_ends_at_the_image():
    model = patch_mean_toy(np.ones(16))
    images = torch.zeros(1, 3, 8, 8)
    images[..., :4, :4] = 1.0
    out = metrics.get("insertion_auc").with_options(steps=4)(model, images, ["q"],
                                                             torch.rand(1, 4, 4))
    assert out.curves[0][-1] == pytest.approx(float(model.match_probability(images, None)))
    assert len(out.curves[0]) == 5


def test_insertion_start_is_configurable():
    model = patch_mean_toy(np.ones(16))
    images = torch.ones(1, 3, 8, 8)
    out = metrics.get("insertion_auc").with_options(steps=4)(model, images, ["q"],
                                                             torch.rand(1, 4, 4),
                                                             start=SUBSTRATES["zero"])
    assert np.allclose(out.curves[0], [0, 0.25, 0.5, 0.75, 1])  # zeros in, patches back one by one


def _gathered_answer(model, tokens, patches, question):
    """The answer read from only ``patches`` of one image's visual tokens (no image CLS)."""
    with torch.no_grad():
        h = model.text_hidden(tokens[None, [1 + p for p in patches]], model.tokenize([question]))
        return model.answers[int(model.answer_head(h[:, 0]).argmax())]


def test_patch_subset_vqa_equals_answering_from_the_gathered_patches(trained_tiny):
    """vqa_keep / vqa_drop mask the answerer's cross-attention; the reference gathers the kept
    patch tokens (as PNP-VQA's captioner reads only the sampled patches, no image CLS) and answers
    one view at a time, the kept set taken from a plain sort of the map whose ties follow the
    sample's seeded permutation."""
    from metrics._ties import tie_break
    from metrics.downstream import GRIDS
    from benchmark.engine.batch_inputs import images as _images
    from datasets.loader_synthetic import SyntheticDataset

    model = trained_tiny
    data = SyntheticDataset("test")
    recs = [data[i] for i in range(8)]
    images, questions = _images(recs, model), [r.question for r in recs]
    maps = torch.rand(len(recs), *model.grid, generator=torch.Generator().manual_seed(0))
    maps[0] = 0.0  # all ties: the sample's permutation decides

    def exact(pred, answers):
        return float(pred == answers[0])

    n = model.grid[0] * model.grid[1]
    with torch.no_grad():
        tokens = model.visual_tokens(images)
    for name, keep_top in (("vqa_keep_auc", True), ("vqa_drop_auc", False)):
        metric = metrics.get(name).with_options(grid="linear")
        out = metric(model, images, questions, maps, recs, scorer=exact)
        for b, rec in enumerate(recs):
            flat = maps[b].flatten().tolist()
            perm = tie_break([rec.sample_id], n, 0)[0].tolist()
            position = {p: i for i, p in enumerate(perm)}
            order = sorted(range(n), key=lambda p: (-flat[p], position[p]))
            ref = []
            for f in GRIDS["linear"]:  # the fraction read: Chefer's 10% steps
                c = max(1, round(f * n))
                kept = order[:c] if keep_top else order[n - c:]
                ref.append(exact(_gathered_answer(model, tokens[b], sorted(kept), rec.question),
                                 rec.answers))
            np.testing.assert_array_equal(out.curves[b], ref)
            assert out.values[b] == pytest.approx(metrics.auc(ref))
        assert 0 < out.curves.mean() < 1  # the views change answers: the comparison has teeth


def test_keep_and_drop_share_one_grid_log_by_default_chefers_linear_available():
    from metrics.downstream import GRIDS, PNP_FRACTION

    log = GRIDS["log"]
    assert log[0] == pytest.approx(PNP_FRACTION, abs=1e-4) and log[-1] == 1.0
    ratios = log[1:] / log[:-1]
    assert np.allclose(ratios, ratios[0], rtol=1e-2)  # equal ratios: every doubling weighs the same
    assert np.allclose(GRIDS["linear"], np.arange(1, 11) / 10)  # Chefer: remove 0, 10, …, 90%


def test_pixel_mode_leaves_nothing_of_the_dropped_patches(trained_tiny):
    """In ``pixels`` mode the answer depends only on the kept patches' pixels: changing every
    dropped pixel changes nothing; in ``tokens`` mode it can (self-attention leaks)."""
    from benchmark.engine.batch_inputs import images as _images
    from datasets.loader_synthetic import SyntheticDataset
    from metrics.downstream import _answers_with_patches

    model = trained_tiny
    recs = [SyntheticDataset("test")[i] for i in range(16)]
    images, questions = _images(recs, model), [r.question for r in recs]
    n = model.grid[0] * model.grid[1]
    keep = torch.zeros(len(recs), 1, n, dtype=torch.bool)
    keep[:, 0, :n // 3] = True  # the top third of the image
    other = images.clone()
    dropped = other[..., images.shape[-2] // 3 + 8:, :]
    # seeded: whether a leak flips an answer must not depend on what ran before in the session
    other[..., images.shape[-2] // 3 + 8:, :] = torch.randn(
        dropped.shape, generator=torch.Generator().manual_seed(0))
    same = _answers_with_patches(model, images, questions, keep, "pixels")
    assert same == _answers_with_patches(model, other, questions, keep, "pixels")
    tokens = _answers_with_patches(model, images, questions, keep, "tokens")
    assert tokens != _answers_with_patches(model, other, questions, keep, "tokens")


def test_pnp_draws_are_seeded_sized_and_proportional_to_the_map():
    from metrics.downstream import pnp_draws

    maps = torch.tensor([[[0.0, 1.0], [3.0, -2.0]]])  # negative relevance is never drawn
    keep = pnp_draws(maps, 1, 4000, seed=0)
    assert torch.equal(keep, pnp_draws(maps, 1, 4000, seed=0))
    assert (keep.sum(-1) == 1).all()
    freq = keep[0].double().mean(0)
    assert freq[0] < 1e-3 and freq[3] < 1e-3
    assert freq[2] / freq[1] == pytest.approx(3.0, rel=0.15)
    flat = torch.ones(1, 4, 4)
    draws = pnp_draws(flat, 5, 3, seed=1)
    assert (draws.sum(-1) == 5).all() and not torch.equal(draws, pnp_draws(flat, 5, 3, seed=2))


def test_pnp_sample_equals_mean_accuracy_over_gathered_draws(trained_tiny):
    from benchmark.engine.batch_inputs import images as _images
    from datasets.loader_synthetic import SyntheticDataset
    from metrics.downstream import pnp_draws

    model = trained_tiny
    data = SyntheticDataset("test")
    recs = [data[i] for i in range(6)]
    images, questions = _images(recs, model), [r.question for r in recs]
    maps = torch.rand(len(recs), *model.grid, generator=torch.Generator().manual_seed(0))

    def exact(pred, answers):
        return float(pred == answers[0])

    out = metrics.get("vqa_pnp_sample").with_options(num_patches=6, repeats=3)(
        model, images, questions, maps, recs, scorer=exact, seed=4)
    keep = pnp_draws(maps, 6, 3, seed=4)
    with torch.no_grad():
        tokens = model.visual_tokens(images)
    for b, rec in enumerate(recs):
        hits = [exact(_gathered_answer(model, tokens[b], keep[b, r].nonzero().flatten().tolist(),
                                       rec.question), rec.answers) for r in range(3)]
        assert out.values[b] == pytest.approx(np.mean(hits))
    assert 0 < out.values.mean() < 1  # the draws change answers: the comparison has teeth


@pytest.mark.parametrize("name", ["deletion_auc", "insertion_auc"])
def test_a_fused_models_segmentation_stream_is_perturbed_with_the_pixels(name, monkeypatch):
    """A deleted patch (or one not yet inserted) shows the substrate, so the segmentation stream
    reads background there, as when the object is re-rendered away; the stream used to keep
    showing the object to the fusion encoder, which bent the fused model's curves."""
    from benchmark import models
    from benchmark.engine.batch_inputs import fed, images as prepared
    from benchmark.engine.config import RunConfig
    from benchmark.models.fused import FusedBlipAdapter
    from datasets.segmentation_stream import absent_side_inputs
    from datasets.loader_synthetic import SyntheticDataset

    model = models.load("difnet-itm-tiny")
    recs = [SyntheticDataset(split="test")[i] for i in range(2)]
    view = fed(model, recs, recs, RunConfig(models=[], methods=[], metrics=[]))
    seen = []
    original = FusedBlipAdapter.visual_tokens

    def recording(self, images):
        seen.append(self.side("segmentation", images.shape[0]).clone())
        return original(self, images)

    monkeypatch.setattr(FusedBlipAdapter, "visual_tokens", recording)
    maps = torch.rand(2, *model.grid, generator=torch.Generator().manual_seed(0))  # no ties
    metrics.get(name).with_options(steps=4)(view, prepared(recs, model),
                                            [r.question for r in recs], maps, recs,
                                            absent=absent_side_inputs(model, "exact"))
    stream = torch.cat(seen)  # every image the model saw: the curves' points, ends included
    background = torch.zeros(stream.shape[-1])
    background[0] = 1
    own = view.inputs["segmentation"]
    order = maps.flatten(1).argsort(1, descending=True)
    expected = []  # per (sample, point): the patches gone show background, the rest their own
    for shown in step_counts(144, 4).tolist():
        for b in range(2):
            top = torch.zeros(144, dtype=torch.bool)
            top[order[b, :shown]] = True
            gone = ~top if name == "insertion_auc" else top
            expected.append(torch.where(gone[:, None], background, own[b]))
    # each image seen is one of the curve's points (the ends may be computed apart, in any
    # order), and every point was seen
    assert all(any(torch.equal(x, e) for e in expected) for x in stream)
    assert all(any(torch.equal(x, e) for x in stream) for e in expected)
