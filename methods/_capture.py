"""The one capture mechanism every method uses: attention maps, activations, gradients.

:func:`capture` records, during the forward passes inside it, the outputs of chosen modules (one
entry per call, in call order — a layer applied T times is recorded T times) and the attention
probabilities of LAVIS attention modules (through LAVIS's own ``save_attention`` protocol). On
exit — also after an exception — every hook is removed and every LAVIS flag and saved tensor is
restored, so the model is left as it was found and a later ``torch.no_grad()`` forward works.
Gradients are taken with ``torch.autograd.grad``: no parameter's ``.grad`` is touched.

Attention probabilities of any attention module whose probabilities pass through a dropout
module (LAVIS's ViT ``attn.attn_drop``, BERT's ``self.dropout``, our ``MultiHeadAttention``) are
the outputs of that dropout module in eval mode: :func:`attention_probability_modules` lists them.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Sequence

import torch
from torch import nn

_LAVIS_ATTRS = ("save_attention", "attention_map", "attn_gradients")


@dataclass
class Captured:
    """What was recorded inside :func:`capture`: ``outputs[name]`` is a list, one per call."""

    outputs: Dict[str, List[torch.Tensor]] = field(default_factory=dict)
    attentions: Dict[str, torch.Tensor] = field(default_factory=dict)

    def last(self, name: str) -> torch.Tensor:
        return self.outputs[name][-1]


def grads(score: torch.Tensor, tensors: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """Gradients of ``score.sum()`` w.r.t. ``tensors`` (zeros for tensors it does not reach)."""
    out = torch.autograd.grad(score.sum(), list(tensors), retain_graph=True, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for t, g in zip(tensors, out)]


def _first_tensor(output):
    return output[0] if isinstance(output, (tuple, list)) else output


@contextlib.contextmanager
def capture(outputs: Dict[str, nn.Module] | None = None,
            lavis_attentions: Dict[str, nn.Module] | None = None) -> Iterator[Captured]:
    """Record module outputs and LAVIS cross-attention probabilities; restore everything on exit.

    Args:
        outputs: name → module whose forward output (first tensor) is recorded at every call.
        lavis_attentions: name → a LAVIS ``BertSelfAttention``; its ``attention_map`` (saved by
            LAVIS when ``save_attention`` is on) is recorded, as LAVIS's ``compute_gradcam`` reads it.
    """
    rec = Captured()
    handles = []
    saved: Dict[str, dict] = {}
    try:
        for name, mod in (outputs or {}).items():
            rec.outputs[name] = []

            def _out_hook(_m, _args, out, _name=name):
                rec.outputs[_name].append(_first_tensor(out))

            handles.append(mod.register_forward_hook(_out_hook))
        for name, mod in (lavis_attentions or {}).items():
            saved[name] = {a: mod.__dict__[a] for a in _LAVIS_ATTRS if a in mod.__dict__}
            mod.save_attention = True

            def _keep(m, _args, _out, _name=name):
                rec.attentions[_name] = m.attention_map

            handles.append(mod.register_forward_hook(_keep))
        with torch.enable_grad():
            yield rec
    finally:
        for h in handles:
            h.remove()
        for name, mod in (lavis_attentions or {}).items():
            for a in _LAVIS_ATTRS:
                mod.__dict__.pop(a, None)
            mod.__dict__.update(saved.get(name, {}))
            if "save_attention" not in saved.get(name, {}):
                mod.save_attention = False


def vit_attention_modules(model) -> List[nn.Module]:
    """Dropout modules carrying each ViT block's attention probabilities, first block first."""
    vit = model.visual_encoder
    vit = getattr(vit, "vit", vit)  # a fused encoder wraps the ViT
    return [blk.attn.attn_drop for blk in vit.blocks]


def fusion_attention_modules(model) -> List[nn.Module]:
    """Dropout modules of the MultiLevelEncoder's layers (empty for a model without fusion)."""
    fusion = model.fusion_encoder
    return [] if fusion is None else [layer.attn.attn_drop for layer in fusion.layers]


def text_attention_modules(model, kind: str) -> List[nn.Module]:
    """BERT layers' ``self`` or ``cross`` attention-probability dropout modules."""
    attr = "attention" if kind == "self" else "crossattention"
    return [getattr(layer, attr).self.dropout for layer in model.text_layers]
