"""Max-sensitivity (Yeh et al., "On the (in)fidelity and sensitivity of explanations", NeurIPS
2019), computed by ``captum.metrics.sensitivity_max``: how much a map moves when the image
barely does."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from captum.metrics import sensitivity_max

from benchmark.core.options import Option, at_least
from benchmark.models.protocol import VLModel
from metrics import register
from metrics.base import SanityMetric
from metrics.sanity import Explainer, explain


@register("sensitivity_max")
class SensitivityMax(SanityMetric):
    r"""captum's max-sensitivity of the method's maps under a small image perturbation:

    .. math:: \max_{k \le K} \frac{\lVert \Phi(x + \delta_k) - \Phi(x) \rVert_F}
        {\lVert \Phi(x) \rVert_F}, \quad \delta_k \sim U[-r, r]^{3 \times H \times W}

    per sample, over ``samples`` = K draws of uniform noise of radius ``radius`` in the
    model's normalised input space (captum's defaults: K = 10, r = 0.02), drawn from the run's
    seed (captum's own draw uses the global generator). The question and the model's side
    inputs are unchanged. Relative to the map's own norm, so scale-free; 0 for a map that
    does not move. Lower is better (robustness), but a map that never moves is not thereby
    good: the centre prior scores 0. A method with a seed (``random``) is called with the
    run's seed on every copy: its maps differ with their row, as they would in any batch.
    Run with the sanity checks, on their questions of the run plan (``nominal_maps`` = K + 1).
    """

    higher_is_better = False
    samples = Option("samples", int, 10, "perturbed copies per input (captum's "
                     "n_perturb_samples)", validate=at_least(1))
    radius = Option("radius", float, 0.02, "half-width of the uniform noise, in the model's "
                    "normalised input space (captum's perturb_radius)")

    @property
    def nominal_maps(self) -> int:  # type: ignore[override]
        return self.samples + 1

    def __call__(self, model: VLModel, method: Explainer, images: torch.Tensor,
                 questions: Sequence[str], seed: int = 0, **method_kwargs: Any) -> list:
        b = images.shape[0]
        view = model.for_batch(b)
        noise = torch.Generator(device="cpu").manual_seed(int(seed) + 53)

        def perturb(x: torch.Tensor) -> torch.Tensor:
            delta = (torch.rand(x.shape, generator=noise) * 2 - 1) * self.radius
            return x + delta.to(x)

        def maps(x, additional_forward_args):
            (idx,), images = additional_forward_args, x[0] if isinstance(x, tuple) else x
            with torch.enable_grad():  # captum calls this under no_grad; methods need gradients
                out = explain(method, view.select(idx), images,
                              [questions[int(i)] for i in idx], seed=seed, **method_kwargs)
            return (out.to(images),) if isinstance(x, tuple) else out.to(images)

        values = sensitivity_max(maps, images, perturb_func=perturb,
                                 n_perturb_samples=self.samples,
                                 additional_forward_args=(torch.arange(b, device=images.device),))
        return [{"stage": "sensitivity_max", "index": 0,
                 "sensitivity": [float(v) for v in values.cpu()]}]
