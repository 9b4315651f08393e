"""Sparseness (Gini) equals Quantus' Sparseness on shared maps."""
import math

import numpy as np
import pytest

import metrics

gini = metrics.get("sparseness")


def _quantus(maps: np.ndarray) -> np.ndarray:
    """Quantus on one map at a time: it scales a batch by the batch's maximum, so on a batch
    one map's score would depend on the others."""
    import quantus

    metric = quantus.Sparseness(disable_warnings=True)
    return np.array([metric(model=None, x_batch=np.zeros((1, 1, *m.shape)), y_batch=np.zeros(1, int),
                            a_batch=m[None, None].astype(np.float64))[0] for m in maps])


def test_equals_quantus_sparseness_on_shared_maps():
    rng = np.random.default_rng(0)
    maps = np.stack([rng.random((8, 8)), rng.standard_normal((8, 8)),
                     np.where(rng.random((8, 8)) < 0.1, 5.0, 0.0), rng.random((8, 8)) ** 6 * 1e-6])
    ours = np.array([gini(m) for m in maps])
    assert np.allclose(ours, _quantus(maps), atol=1e-5)
    # Quantus refuses a constant map; its Gini is 0
    assert gini(np.full((8, 8), 3.0)) == pytest.approx(0.0, abs=1e-6) and ours[2] > ours[0]


def test_one_hot_map_is_near_one_and_scale_free():
    one = np.zeros((8, 8))
    one[2, 3] = 1.0
    assert gini(one) == pytest.approx(63 / 64, abs=1e-5)
    m = np.random.default_rng(1).random((8, 8))
    assert gini(m) == pytest.approx(gini(1e-6 * m), abs=1e-6)


def test_non_finite_map_is_excluded():
    m = np.ones((4, 4))
    m[0, 0] = np.nan
    assert math.isnan(gini(m))
