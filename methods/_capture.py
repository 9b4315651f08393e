"""The one capture mechanism every method uses: attention maps, activations, gradients.

:func:`capture` records, during the forward passes inside it, the outputs of chosen modules (one
entry per call, in call order — a layer applied T times is recorded T times), with gradients
enabled. A model's attention probabilities are the outputs of its attention *sites*
(:meth:`benchmark.models.protocol.VLModel.attention_sites`). On exit — also after an exception —
every hook is removed, so the model is left as it was found and a later ``torch.no_grad()``
forward works. Gradients are taken with ``torch.autograd.grad``: no parameter's ``.grad`` is
touched.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Sequence

import torch
from torch import nn


@dataclass
class Captured:
    """What was recorded inside :func:`capture`: ``outputs[name]`` is a list, one per call."""

    outputs: Dict[str, List[torch.Tensor]] = field(default_factory=dict)

    def last(self, name: str) -> torch.Tensor:
        return self.outputs[name][-1]

    def all_last(self, names) -> List[torch.Tensor]:
        """The last recorded output of each of ``names``, in order."""
        return [self.last(n) for n in names]


def grads(score: torch.Tensor, tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Gradients of ``score.sum()`` w.r.t. ``tensors`` (zeros for tensors it does not reach)."""
    out = torch.autograd.grad(score.sum(), list(tensors), retain_graph=True, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, out)]


def _first_tensor(output):
    return output[0] if isinstance(output, (tuple, list)) else output


@contextlib.contextmanager
def capture(outputs: Dict[str, nn.Module] | None = None) -> Iterator[Captured]:
    """Record the forward outputs of modules; remove every hook on exit.

    Args:
        outputs: name → module whose forward output (first tensor) is recorded at every call.
    """
    rec = Captured()
    handles = []
    try:
        for name, mod in (outputs or {}).items():
            rec.outputs[name] = []

            def _out_hook(_m, _args, out, _name=name):
                rec.outputs[_name].append(_first_tensor(out))

            handles.append(mod.register_forward_hook(_out_hook))
        with torch.enable_grad():
            yield rec
    finally:
        for h in handles:
            h.remove()


def sites(model, kind: str, prefix: str) -> Dict[str, nn.Module]:
    """``{prefix + i: site}`` for the model's attention sites of ``kind``, in forward order."""
    return {f"{prefix}{i}": m for i, m in enumerate(model.attention_sites(kind))}
