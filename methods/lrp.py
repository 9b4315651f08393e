"""Layer-wise relevance propagation for the transformers the suite explains: CP-LRP with the ε
rule, read as gradient × input under rules that hooks put on the model's own modules."""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Sequence, Tuple

import torch
from torch import nn
from zennit.core import stabilize

from benchmark.models.protocol import ATTENTION_KINDS, VLModel
from benchmark.models.tensors import TextBatch
from methods import register
from methods._capture import capture, grads
from methods.base import (TARGET, Attribution, Explanation, Option, question_tokens,
                          target_score, to_grid)

#: element-wise activations given the identity rule (their relevance passes unchanged)
ELEMENTWISE = (nn.GELU, nn.ReLU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU)


def _is_elementwise(module: nn.Module) -> bool:
    # transformers' activations (GELUActivation, QuickGELUActivation …) are modules of their own
    return isinstance(module, ELEMENTWISE) or type(module).__module__ == "transformers.activations"


def _same_value(out: torch.Tensor, surrogate: torch.Tensor) -> torch.Tensor:
    """``out``'s value exactly, ``surrogate``'s gradient: the forward pass is left as it was."""
    return out.detach() + (surrogate - surrogate.detach())


def _epsilon(epsilon: float):
    def hook(_m, _args, out):  # ε rule: the gradient into z scaled by z / (z + ε·sign z)
        if out.requires_grad:  # on the output tensor: nothing added to the forward pass
            z = out.detach()
            out.register_hook(lambda grad: grad * (z / stabilize(z, epsilon)))
    return hook


def _identity(_m, args, out):
    x = args[0]  # f(x) = x · (f(x)/x) with the ratio held constant
    ratio = torch.where(x == 0, torch.zeros_like(out), out / torch.where(x == 0, 1.0, x))
    return _same_value(out, x * ratio.detach())


def _layer_norm(m: nn.LayerNorm, args, out):
    x = args[0]  # the normaliser held constant: the centring and the affine map stay linear
    dims = tuple(range(-len(m.normalized_shape), 0))
    centred = x - x.mean(dims, keepdim=True)
    std = (x.var(dims, unbiased=False, keepdim=True) + m.eps).sqrt().detach()
    y = centred / std
    y = y * m.weight + m.bias if m.elementwise_affine else y
    return _same_value(out, y)


def _constant(_m, _args, out):
    return out.detach()


@contextlib.contextmanager
def lrp_rules(module: nn.Module, attention: Sequence[nn.Module],
              epsilon: float) -> Iterator[None]:
    """Within it, gradient × input of any tensor in ``module`` is its LRP relevance: the outputs
    of the ``attention`` sites (probabilities) and every LayerNorm's normaliser are constants
    (CP-LRP), linear and convolutional layers take the ε rule, element-wise activations the
    identity rule. Every hook is removed on exit; forward values are unchanged."""
    handles = [site.register_forward_hook(_constant) for site in attention]
    try:
        for mod in module.modules():
            if isinstance(mod, (nn.Linear, nn.Conv2d)):
                handles.append(mod.register_forward_hook(_epsilon(epsilon)))
            elif isinstance(mod, nn.LayerNorm):
                handles.append(mod.register_forward_hook(_layer_norm))
            elif _is_elementwise(mod):
                handles.append(mod.register_forward_hook(_identity))
        yield
    finally:
        for h in handles:
            h.remove()


def relevance(model: VLModel, images: torch.Tensor, text: TextBatch, target: str,
              epsilon: float) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """((B, C, H, W) pixel relevance, (B, L) relevance of each token embedding of ``text`` or
    ``None`` where the model names no embedding site), both of the score ``target``."""
    site = model.text_embedding_site() if model.rows_are_tokens else None
    attention = [s for kind in ATTENTION_KINDS for s in model.attention_sites(kind)]
    sites = {"emb": site} if site is not None else {}
    with lrp_rules(model.module, attention, epsilon), capture(sites) as rec:
        x = images.detach().requires_grad_(True)
        score = target_score(model, model.visual_tokens(x), text, target)
        emb = rec.outputs.get("emb", [])
        found = grads(score, [x] + emb[-1:])
    pixels = x.detach() * found[0]
    tokens = (emb[-1].detach() * found[1]).sum(-1) if emb else None
    return pixels, tokens


@register("lrp")
class LRP(Attribution):
    r"""LRP for transformers after Ali et al. (ICML 2022, "conservative propagation",
    CP-LRP), with zennit's ε rule (``zennit.core.stabilize``) on every linear and convolutional
    layer.

    The relevance of a tensor :math:`t` is :math:`t \odot \partial y / \partial t` taken through
    a model whose attention probabilities and LayerNorm normalisers are held constant and whose
    element-wise activations pass relevance unchanged (:func:`lrp_rules`); a layer
    :math:`z = Wx + b` then gives :math:`R_i = \sum_j x_i w_{ij} R_j / (z_j + \epsilon \,
    \mathrm{sign}\, z_j)` — what zennit's ``Epsilon`` rule computes, tested equal on shared
    layers. Relevance is conserved through attention, residual sums and normalisation: the
    pixels, the token embeddings and the biases together hold the score :math:`y` (the ``target``
    option, default the match logit). AttnLRP's softmax rule (Achtibat et al., ICML 2024) is not
    used (its package, ``lxt`` 2.1, needs ``transformers`` 4.36 or later, which the suite now
    runs: a second rule set for later). Not for decoder-only models: their RMSNorm and gated
    MLPs are outside these rules.

    The map: :math:`M(p)` the pixel relevance summed over the channels and pixels of patch
    :math:`p`. Question-token relevance (``Explanation.tokens``): each token embedding's
    relevance, summed over its features.

    Added after the analysis was fixed: an exploratory method (tested against every method and
    baseline, uncorrected, never ranked nor in a Holm family).

    Options:
        epsilon: the ε rule's stabiliser (zennit's default 1e-6: close to LRP-0).
        target: the score explained (``methods.base.TARGET``).
    """

    per_sample = True
    exploratory = True

    def applicable(self, model: VLModel) -> Optional[str]:
        if any(type(m).__name__.endswith("RMSNorm") for m in model.module.modules()):
            return ("its rules cover LayerNorm and element-wise activations, not a language "
                    "model's RMSNorm and gated (multiplicative) MLP")
        return None
    target = TARGET
    epsilon = Option("epsilon", float, 1e-6, "the ε rule's stabiliser on linear layers")

    def attribute(self, model: VLModel, images: torch.Tensor,
                  questions: Sequence[str]) -> Explanation:
        text = model.tokenize(questions)
        pixels, tokens = relevance(model, images, text, self.target, self.epsilon)
        gh, gw = model.grid
        b, _, h, w = pixels.shape
        per_patch = pixels.sum(1).reshape(b, gh, h // gh, gw, w // gw).sum((2, 4))
        return Explanation(to_grid(per_patch.flatten(1), model.grid),
                           tokens=None if tokens is None else question_tokens(tokens, model, text))
