"""Counting a run's passes through its models, by what made them.

A forward pass is one image through a ViT (counted at its patch embedding, which every visual
encoder of the suite calls once per image: the ITM models', the fused models' and PNP-VQA's
captioner's); a backward pass is one image in a gradient computation (``torch.autograd.grad``,
counted by the batch of the tensors it differentiates for). The engine labels what it computes
(``part("cross_attn_gradcam/deletion_auc")``); :class:`PassCounter` adds every pass to the label
in force. Outside a counter the labels cost one context variable each.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections import defaultdict
from typing import Dict, Iterator, List

import torch

_LABEL: contextvars.ContextVar = contextvars.ContextVar("pass_label", default="other")


@contextlib.contextmanager
def part(label: str) -> Iterator[None]:
    """Count the passes made inside the block under ``label``."""
    token = _LABEL.set(label)
    try:
        yield
    finally:
        _LABEL.reset(token)


class PassCounter:
    """Forward and backward passes (images) per label while installed (a context manager)."""

    def __init__(self) -> None:
        self.forward: Dict[str, int] = defaultdict(int)
        self.backward: Dict[str, int] = defaultdict(int)
        self._undo: List = []

    def _on_forward(self, module, args) -> None:
        if type(module).__name__ == "PatchEmbed" and args and torch.is_tensor(args[0]):
            self.forward[_LABEL.get()] += int(args[0].shape[0])

    def __enter__(self) -> "PassCounter":
        from torch.nn.modules import module as torch_module

        handle = torch_module.register_module_forward_pre_hook(self._on_forward)
        grad = torch.autograd.grad

        def counted(outputs, inputs, *args, **kwargs):
            first = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            self.backward[_LABEL.get()] += int(first.shape[0]) if first.dim() else 1
            return grad(outputs, inputs, *args, **kwargs)

        torch.autograd.grad = counted
        self._undo = [handle.remove, lambda: setattr(torch.autograd, "grad", grad)]
        return self

    def __exit__(self, *exc) -> None:
        for undo in self._undo:
            undo()
