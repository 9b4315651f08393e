"""Infidelity (Yeh et al., "On the (in)fidelity and sensitivity of explanations", NeurIPS 2019),
computed by ``captum.metrics.infidelity``."""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch
from captum.metrics import infidelity

from metrics import register
from metrics.faithfulness_correlation import RandomSubsetMetric


@register("infidelity")
class Infidelity(RandomSubsetMetric):
    r"""captum's infidelity with its optimal scaling (``normalize=True``): on the patch grid,
    with :math:`I \in \{0,1\}^N` a random set of ``round(subset · N)`` patches removed (shown
    as the run's deletion substrate, read as absent by a fused model's segmentation stream),

    .. math:: \mathrm{INFD} = \mathbb{E}_I\big[(\beta\, I^\top a - (f(x) - f(x_{I \leftarrow
        \text{substrate}})))^2\big], \quad \beta = \frac{\mathbb{E}[I^\top a\, \Delta f]}
        {\mathbb{E}[(I^\top a)^2]}

    over ``runs`` sets per sample, seeded by (run seed, sample id) — the sets and drops of
    ``faithfulness_correlation`` (with the same options), which captum reads as a tabulated
    model: the model is run once per question for every method. :math:`f` is the match
    probability. The scaling makes the score independent of a map's scale (methods' maps
    differ by orders of magnitude), and also of its *sign*: a map and its negation score the
    same, so it measures how well the map's values explain the drops up to a factor, not
    whether the map points the right way (faithfulness correlation and deletion do). Lower is
    better; the value is in squared probability units. Edge case: an all-zero map → its β is 0
    and the score E[Δf²].
    """

    higher_is_better = False

    def score(self, subsets: Dict[str, torch.Tensor], maps: torch.Tensor) -> np.ndarray:
        b, runs, n = subsets["removed"].shape
        removed = subsets["removed"].reshape(b * runs, n).double()

        def perturb(keep: torch.Tensor):
            return removed, keep - removed

        def tabulated(keep: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            """f at the inputs captum asks for: the image (all kept) or its perturbations."""
            if torch.equal(keep, torch.ones_like(keep)):
                return subsets["image"][idx]
            if not torch.equal(keep, 1 - removed):  # captum asked in pieces or reordered
                raise RuntimeError("infidelity asked for perturbations it was not given")
            return subsets["probs"].reshape(-1)

        return infidelity(tabulated, perturb, torch.ones(b, n, dtype=torch.float64), maps,
                          n_perturb_samples=runs, additional_forward_args=(torch.arange(b),),
                          normalize=True).numpy()
