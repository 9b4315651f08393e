"""How many images one forward of a model may take within a memory budget.

Every batched pass of the suite (a method's maps, Integrated Gradients' path points, the images
of a deletion/insertion curve, the counterfactual re-renders, the VQA metrics' masked reads, the
sanity checks' explains) takes at most ``VLModel.max_batch_images`` images. That bound is
``--max-batch-images`` when given, else the run's ``--memory-budget-gb`` divided by an estimate
of what one image's forward and backward hold (:func:`activation_bytes`). PNP-VQA's captioner
and answerer are not bounded by it: they run without gradients, on the unit's images
(``--batch-size``) and on the few patch tokens each caption draws.

The bound is a function of the configuration and the architecture only (never of the free
memory of the machine): batch sizes change floating-point sums in their last bits, and a run's
numbers must not depend on where it ran.
"""
from __future__ import annotations

from typing import Optional

import torch

from benchmark.models.protocol import VLModel

#: the estimate counts what the model's modules return; the functional operations between them
#: (attention scores before the softmax, residual sums) and the gradients the backward pass
#: allocates add about as much again
OVERHEAD = 2.0


def _nbytes(out) -> int:
    if isinstance(out, torch.Tensor):
        return out.numel() * out.element_size()
    if isinstance(out, (tuple, list)):
        return sum(_nbytes(o) for o in out)
    if isinstance(out, dict):
        return sum(_nbytes(o) for o in out.values())
    return sum(_nbytes(v) for v in getattr(out, "__dict__", {}).values()
               if isinstance(v, torch.Tensor))


def activation_bytes(model: VLModel) -> int:
    """Bytes one image's match-score forward and backward hold: :data:`OVERHEAD` × the outputs
    of every leaf module in a float32 forward of one blank image and a short question (what
    autograd keeps for the backward pass, to within that factor)."""
    total = [0]

    def hook(_module, _inputs, output):
        total[0] += _nbytes(output)

    image = torch.zeros(1, 3, model.image_size, model.image_size, device=model.device)
    question = ["what is in the image"]
    with torch.no_grad():  # a model explaining its answer writes it first, outside the count
        view = model.prepared(image, question) if model.prepares else model
    leaves = [m for m in model.module.modules() if not any(True for _ in m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            view.itm_logits(image, question)
    finally:
        for h in handles:
            h.remove()
    return int(OVERHEAD * total[0])


def images_within(model: VLModel, budget_gb: float) -> int:
    """The most images whose forward and backward fit in ``budget_gb`` GiB (at least one)."""
    return max(1, int(budget_gb * 2 ** 30 // activation_bytes(model)))


def bound(model: VLModel, max_batch_images: Optional[int], budget_gb: float) -> VLModel:
    """``model`` with its forwards bounded: ``max_batch_images`` images when given, else what
    ``budget_gb`` holds (:func:`images_within`)."""
    return model.bounded(max_batch_images or images_within(model, budget_gb))
