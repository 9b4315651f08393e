import math

import numpy as np
import pytest

import metrics
from benchmark.core.maps import default_tolerance

pg = metrics.get("pointing_game")


def _mask(shape, cells):
    m = np.zeros(shape, bool)
    for y, x in cells:
        m[y, x] = True
    return m


def test_hit_and_miss():
    heat = np.zeros((20, 20))
    heat[5, 5] = 1.0
    assert pg(heat, _mask((20, 20), [(5, 6)]), tolerance=2) == 1.0
    assert pg(heat, _mask((20, 20), [(15, 15)]), tolerance=2) == 0.0


def test_empty_mask_is_nan_and_excluded():
    assert math.isnan(pg(np.ones((4, 4)), np.zeros((4, 4), bool), tolerance=1))


def test_non_finite_map_is_a_miss_never_a_hit():
    heat = np.zeros((10, 10))
    heat[2, 2] = np.nan
    assert pg(heat, np.ones((10, 10), bool), tolerance=3) == 0.0
    heat[2, 2] = np.inf
    assert pg(heat, np.ones((10, 10), bool), tolerance=3) == 0.0


def test_ties_take_first_maximum_in_row_major_order():
    heat = np.zeros((10, 10))
    heat[1, 8] = 1.0  # first in row-major order
    heat[7, 1] = 1.0
    near_first = _mask((10, 10), [(1, 9)])
    near_second = _mask((10, 10), [(7, 2)])
    assert pg(heat, near_first, tolerance=1.5) == 1.0
    assert pg(heat, near_second, tolerance=1.5) == 0.0


def test_tolerance_boundary_is_strict():
    heat = np.zeros((20, 20))
    heat[10, 10] = 1.0
    gt = _mask((20, 20), [(10, 13)])  # exactly 3 px away
    assert pg(heat, gt, tolerance=3) == 0.0  # not strictly closer
    assert pg(heat, gt, tolerance=3.0001) == 1.0


def test_grid_map_is_upsampled_bilinearly_to_the_mask():
    grid = np.zeros((4, 4))
    grid[0, 3] = 1.0  # top-right patch of a 4x4 grid over 16x16 pixels
    top_right = np.zeros((16, 16), bool)
    top_right[0:4, 12:16] = True
    assert pg(grid, top_right, tolerance=1) == 1.0
    assert pg(grid, ~top_right, tolerance=1) == 0.0


def test_default_tolerance_scales_torchray_15px_at_224():
    assert default_tolerance(224) == 15.0
    assert default_tolerance(96) == pytest.approx(15 * 96 / 224)
    heat = np.zeros((96, 96))
    heat[50, 50] = 1
    assert pg(heat, _mask((96, 96), [(50, 56)])) == 1.0  # 6 px < 6.43 px
    assert pg(heat, _mask((96, 96), [(50, 57)])) == 0.0  # 7 px


def test_auc_normalised_trapezoid():
    assert metrics.auc([1, 1, 1]) == 1.0
    assert metrics.auc([0, 0]) == 0.0
    assert metrics.auc([1, 0]) == 0.5
    assert metrics.auc([0, 1, 0, 1]) == pytest.approx(0.5)
    assert metrics.auc([0.2, 0.4, 0.8]) == pytest.approx(((0.2 + 0.4) / 2 + (0.4 + 0.8) / 2) / 2)


def test_every_metric_is_an_instance_of_one_kind_with_its_name():
    from metrics.base import (ComplexityMetric, CounterfactualMetric, LocalisationMetric,
                              ModalityMetric, ModelMetric, ReferenceMetric, SanityMetric)

    kinds = (LocalisationMetric, CounterfactualMetric, ModelMetric, SanityMetric, ReferenceMetric,
             ComplexityMetric, ModalityMetric)
    for name in metrics.available():
        metric = metrics.get(name)
        assert isinstance(metric, kinds) and metric.name == name
        assert isinstance(metric.higher_is_better, bool)


def test_a_bare_function_is_not_a_metric():
    with pytest.raises(TypeError, match="subclass of one of metrics.base.s kinds"):
        metrics.register("bare")(lambda heatmap, mask: 0.0)


def test_the_pointing_tolerance_is_each_images_own(monkeypatch):
    """A dataset whose tolerance scales with the image's side gets it per image (not the first
    image's side for every image), and the manifest says the range."""
    import dataclasses

    import datasets
    from benchmark.engine import run_data
    from benchmark.engine.config import RunConfig

    data = datasets.get("synthetic")(split="test")

    class Mixed:
        def __len__(self):
            return 4

        def __getitem__(self, i):
            r = data[i]
            if i % 2 == 0:
                return r
            up = lambda a: None if a is None else np.kron(a, np.ones((2, 2) + a.shape[2:], a.dtype))  # noqa: E731
            return dataclasses.replace(r, image=up(r.image), target_mask=up(r.target_mask),
                                       distractor_mask=up(r.distractor_mask))

        def __getattr__(self, name):
            return getattr(data, name)

    monkeypatch.setattr(run_data, "load_dataset", lambda cfg: Mixed())
    run = run_data.load_run_data(RunConfig(models=[], methods=[], metrics=[], limit=4))
    ids = [r.sample_id for r in run.records]
    assert run.tolerance[ids[0]] == pytest.approx(15 * 96 / 224)
    assert run.tolerance[ids[1]] == pytest.approx(15 * 192 / 224)
    assert run.dataset_info["pointing_tolerance_px"]["per"] == "image"
    assert run.dataset_info["image_size"] == {"min": 96, "max": 192}
