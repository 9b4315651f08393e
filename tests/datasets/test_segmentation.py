import numpy as np
import pytest
import torch

from benchmark.core.errors import InputError
from datasets.segmentation_stream import batch_segmentation, class_histogram, load_npy, resample_scores
from datasets.base import Record


def _rec(i, sem):
    img = np.zeros((8, 8, 3), np.uint8)
    return Record(f"s{i}", img, "q", ["a"] * 10, "f", np.zeros((8, 8), bool),
                  np.zeros((8, 8), bool), sem)


def test_class_histogram_counts_fractions_per_patch():
    sem = np.zeros((8, 8), np.int64)
    sem[:4, :4] = 2
    sem[0, 4] = 1
    h = class_histogram(sem, 2, 3)
    assert np.allclose(h[0], [0, 0, 1]) and np.allclose(h[1], [15 / 16, 1 / 16, 0])
    assert np.allclose(h.sum(1), 1)


def test_sources_exact_none_shuffled():
    recs = [_rec(i, np.full((8, 8), i, np.int64)) for i in range(3)]
    exact = batch_segmentation(recs, recs, "exact", 2, 3)
    shuffled = batch_segmentation(recs, recs, "shuffled", 2, 3)
    assert torch.equal(shuffled[0], exact[1]) and torch.equal(shuffled[2], exact[0])
    assert batch_segmentation(recs, recs, "none", 2, 3) is None
    with pytest.raises(InputError, match="unknown segmentation source"):
        batch_segmentation(recs, recs, "bogus", 2, 3)


def test_npy_maps_in_difnet_layout(tmp_path):
    maps = np.zeros((3, 7, 7), np.float32)
    maps[1] = 1.0
    np.save(tmp_path / "s0.npy", maps)
    h = load_npy(tmp_path, "s0", 2, 3)
    assert h.shape == (4, 3) and np.allclose(h[:, 1], 1)
    np.save(tmp_path / "s1.npy", np.zeros((5, 7, 7)))
    with pytest.raises(InputError, match=r"s1\.npy has shape \(5, 7, 7\)"):
        load_npy(tmp_path, "s1", 2, 3)
    with pytest.raises(InputError, match=r"missing: .*s2\.npy"):
        load_npy(tmp_path, "s2", 2, 3)
    (tmp_path / "s3.npy").write_bytes(b"garbage")
    with pytest.raises(InputError, match="not a readable"):
        load_npy(tmp_path, "s3", 2, 3)
    assert np.allclose(resample_scores(np.ones((2, 24, 24)), 12).sum(1), 1)
