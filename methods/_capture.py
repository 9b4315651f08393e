"""The one capture mechanism every method uses: attention maps, activations, gradients.

:func:`capture` runs a forward pass with the requested tensors recorded and yields a
:class:`Captured`; on exit (also after an exception) every hook is removed and every LAVIS
attention-saving flag and saved tensor is restored, so a later ``torch.no_grad()`` forward works.
Gradients are taken with ``torch.autograd.grad`` — no parameter ``.grad`` is touched.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Sequence

import torch
from torch import nn

_SAVED_ATTRS = ("save_attention", "attention_map", "attn_gradients")


@dataclass
class Captured:
    """Tensors recorded during the forward inside :func:`capture`, by the names given."""

    attentions: Dict[str, torch.Tensor] = field(default_factory=dict)
    outputs: Dict[str, torch.Tensor] = field(default_factory=dict)

    def grads(self, score: torch.Tensor, names: Sequence[str]) -> List[torch.Tensor]:
        """Gradients of ``score.sum()`` w.r.t. the named captured tensors (attentions first)."""
        tensors = [self.attentions[n] if n in self.attentions else self.outputs[n] for n in names]
        return list(torch.autograd.grad(score.sum(), tensors, retain_graph=True,
                                        allow_unused=True))


def _first_tensor(output):
    return output[0] if isinstance(output, (tuple, list)) else output


@contextlib.contextmanager
def capture(attentions: Dict[str, nn.Module] | None = None,
            outputs: Dict[str, nn.Module] | None = None,
            inputs: Dict[str, nn.Module] | None = None) -> Iterator[Captured]:
    """Record attention probabilities and module outputs/inputs during the forward inside.

    Args:
        attentions: name → an attention module with LAVIS's ``save_attention`` /
            ``attention_map`` protocol (BERT self/cross-attention), or any module whose forward
            hook output holds the probabilities as ``output[1]`` is *not* assumed.
        outputs: name → module whose forward output (first tensor) is recorded.
        inputs: name → module whose first positional input is recorded.
    """
    rec = Captured()
    handles = []
    saved = {}
    try:
        for name, mod in (attentions or {}).items():
            saved[name] = {a: mod.__dict__[a] for a in _SAVED_ATTRS if a in mod.__dict__}
            mod.save_attention = True

            def _keep(m, _args, _out, _name=name):
                rec.attentions[_name] = m.attention_map

            handles.append(mod.register_forward_hook(_keep))
        for name, mod in (outputs or {}).items():
            def _out_hook(_m, _args, out, _name=name):
                rec.outputs[_name] = _first_tensor(out)

            handles.append(mod.register_forward_hook(_out_hook))
        for name, mod in (inputs or {}).items():
            def _in_hook(_m, args, _name=name):
                rec.outputs[_name] = args[0]

            handles.append(mod.register_forward_pre_hook(_in_hook))
        with torch.enable_grad():
            yield rec
    finally:
        for h in handles:
            h.remove()
        for name, mod in (attentions or {}).items():
            for a in _SAVED_ATTRS:
                mod.__dict__.pop(a, None)
            mod.__dict__.update(saved.get(name, {}))
            if "save_attention" not in saved.get(name, {}):
                mod.save_attention = False
