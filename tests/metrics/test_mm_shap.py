"""MM-SHAP: permutation-sampled Shapley values, exact on a score without interactions."""
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from metrics.mm_shap import patch_groups, shapley, t_shap
from tests.fixtures.toys import Toy, toy


@dataclass
class AdditiveToy(Toy):
    """Score = Σ_t a_t · [token t attended] + Σ_p b_p · (mean of patch p): no interactions, so
    every permutation gives each player its exact Shapley value."""

    a: torch.Tensor = field(default_factory=lambda: torch.tensor([0.0, 0.3, -0.2, 0.5, 0.0]))
    b: torch.Tensor = field(default_factory=lambda: torch.arange(16, dtype=torch.float64) / 100)

    def tokenize(self, questions):
        n = len(questions)
        return type(super().tokenize(questions))(torch.zeros(n, 5, dtype=torch.long),
                                                 torch.ones(n, 5, dtype=torch.long))

    def match_probability(self, images, text):
        patches = torch.nn.functional.avg_pool2d(images.double().mean(1, keepdim=True), 2)
        return text.attention_mask.double() @ self.a.double() + patches.flatten(1) @ self.b


def test_exact_on_an_additive_score_and_seeded():
    model = toy(AdditiveToy, (4, 4), 8, answers=("a", "b"))
    image = torch.ones(3, 8, 8)
    values = shapley(model, image, "q", "s", 0, permutations=2, groups=(2, 2))
    assert np.allclose(values["text"], [0.3, -0.2, 0.5])  # [ENC] and [SEP] always present
    owner = patch_groups((4, 4), (2, 2))
    expected = [model.b[torch.from_numpy(owner == g)].sum().item() for g in range(4)]
    assert np.allclose(values["image"], expected)
    share = t_shap(values)
    assert share == pytest.approx(1.0 / (1.0 + sum(expected)))
    again = shapley(model, image, "q", "s", 0, permutations=2, groups=(2, 2))
    assert np.array_equal(again["text"], values["text"])


def test_patch_groups_tile_the_grid():
    owner = patch_groups((8, 8), (4, 4))
    assert owner.reshape(8, 8)[0].tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert np.bincount(owner).tolist() == [4] * 16
