"""ROAD: the imputation solves its neighbour equations; MoRF and LeRF order patches oppositely."""
from dataclasses import dataclass, field

import numpy as np
import torch

import metrics
from metrics.road import impute
from tests.fixtures.toys import Toy, toy

W = np.arange(1, 17, dtype=np.float64)


@dataclass
class TextureToy(Toy):
    """Score = Σ_p w_p · (pixel variance inside patch p) / Σ w, on a 4×4 grid of 4 px patches:
    what it reads is texture, which an imputation from the neighbours does not bring back
    (a patch-mean model would barely notice ROAD's removal: that is ROAD's point)."""

    w: torch.Tensor = field(default_factory=lambda: torch.as_tensor(W))

    def match_probability(self, images, text):
        x = images.double().mean(1).unfold(1, 4, 4).unfold(2, 4, 4).flatten(3)
        return (x.var(-1).flatten(1) * self.w).sum(1) / self.w.sum()


def test_imputed_pixels_are_the_weighted_mean_of_their_neighbours():
    rng = np.random.default_rng(0)
    image = torch.as_tensor(rng.standard_normal((3, 12, 12)))
    gone = torch.zeros(12, 12, dtype=torch.bool)
    gone[3:8, 4:9] = True
    out = impute(image, gone, np.zeros((3, 12, 12))).numpy()
    assert np.array_equal(out[:, ~gone.numpy()], image.numpy()[:, ~gone.numpy()])
    weights = {(dy, dx): (1 / 12 if dy and dx else 1 / 6)
               for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx}
    for y, x in zip(*np.nonzero(gone.numpy())):
        mean = sum(w * out[:, y + dy, x + dx] for (dy, dx), w in weights.items())
        assert np.allclose(out[:, y, x], mean, atol=1e-9)
    ramp = torch.as_tensor(np.add.outer(np.arange(12.0), 2 * np.arange(12.0)))[None]
    assert torch.allclose(impute(ramp, gone, np.zeros((1, 12, 12))), ramp)  # linear: exact
    noise = rng.standard_normal((1, 12, 12))
    assert torch.allclose(impute(ramp, gone, noise) - ramp,
                          torch.as_tensor(noise) * gone)


def test_morf_and_lerf_reward_the_faithful_order_and_are_seeded():
    model = toy(TextureToy, (4, 4), 16, answers=("a", "b"))
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    faithful = torch.as_tensor(W, dtype=torch.float32).reshape(1, 4, 4).expand(2, 4, 4)
    morf = metrics.get("road_morf").with_options(steps=10)
    lerf = metrics.get("road_lerf").with_options(steps=10)
    good, bad = (morf(model, images, ["q", "q"], m) for m in (faithful, -faithful))
    assert good.curves.shape == (2, 10) and np.allclose(good.x, np.round(np.arange(10) * 1.6) / 16)
    assert (good.values < bad.values).all()
    assert (lerf(model, images, ["q", "q"], faithful).values >
            lerf(model, images, ["q", "q"], -faithful).values).all()
    again = morf(model, images, ["q", "q"], faithful)
    assert np.array_equal(again.curves, good.curves)
    other = morf(model, images, ["q", "q"], faithful, seed=1)
    assert not np.array_equal(other.curves[:, 1:], good.curves[:, 1:])
