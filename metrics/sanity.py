"""Model-parameter randomisation test (Adebayo et al., "Sanity Checks for Saliency Maps",
NeurIPS 2018), cascading from the output side of the model towards the input."""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

import methods
from benchmark.models.adapter import ITMAdapter
from metrics import register

#: a stage member: a module (all its parameters, recursively) or one bare parameter
Member = Union[nn.Module, nn.Parameter]


def cascade_stages(model: ITMAdapter) -> List[Tuple[str, List[Member]]]:
    """The randomisation stages, output side first; together they cover every parameter the
    ITM/VQA forward uses.

    ``heads`` (``itm_head``, ``vqa_head``); ``text_layer_{i}`` from the last BERT layer to the
    first; ``text_embeddings``; for a fused model ``fusion_layer_{i}`` from last to first, then
    ``fusion_embeddings`` (the two stream embeddings and the CLS projection); ``vit_norm`` (the
    ViT's final LayerNorm); ``vit_block_{i}`` from last to first; ``patch_embed`` (with the CLS
    token and position embeddings).
    """
    m = model.model
    stages: List[Tuple[str, List[Member]]] = [
        ("heads", [getattr(m, n) for n in ("itm_head", "vqa_head") if hasattr(m, n)])]
    layers = model.text_layers
    stages += [(f"text_layer_{i}", [layers[i]]) for i in reversed(range(len(layers)))]
    stages.append(("text_embeddings", [m.text_encoder.embeddings]))
    fusion = model.fusion_encoder
    if fusion is not None:
        stages += [(f"fusion_layer_{i}", [fusion.layers[i]])
                   for i in reversed(range(len(fusion.layers)))]
        stages.append(("fusion_embeddings", [fusion.embed_input, fusion.embed_pixel,
                                             model.visual_encoder.cls_proj]))
    vit = model.visual_encoder
    vit = getattr(vit, "vit", vit)
    stages.append(("vit_norm", [vit.norm]))
    stages += [(f"vit_block_{i}", [vit.blocks[i]]) for i in reversed(range(len(vit.blocks)))]
    stages.append(("patch_embed", [vit.patch_embed, vit.cls_token, vit.pos_embed]))
    return stages


@torch.no_grad()
def randomise_(members: Sequence[Member], generator: torch.Generator) -> None:
    """Re-initialise in place: N(0, 0.02) for tensors of dim ≥ 2, ones for LayerNorm weights,
    zeros for every other (bias-like) 1-d parameter."""

    def fill(p: nn.Parameter, layer_norm_weight: bool) -> None:
        if layer_norm_weight:
            p.fill_(1.0)
        elif p.dim() >= 2:
            p.copy_(torch.randn(p.shape, generator=generator) * 0.02)
        else:
            p.zero_()

    for member in members:
        if isinstance(member, nn.Parameter):
            fill(member, False)
            continue
        for mod in member.modules():
            for name, p in mod.named_parameters(recurse=False):
                fill(p, isinstance(mod, nn.LayerNorm) and name == "weight")


def spearman(maps_a: torch.Tensor, maps_b: torch.Tensor) -> List[float]:
    """Per-sample Spearman rank correlation of two (B, gh, gw) map batches (NaN if either map
    of a sample is constant)."""
    out = []
    for a, b in zip(maps_a.reshape(len(maps_a), -1).double().numpy(),
                    maps_b.reshape(len(maps_b), -1).double().numpy()):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            out.append(float("nan"))
        else:
            out.append(float(spearmanr(a, b).statistic))
    return out


def mprt(model: ITMAdapter, method_name: str, images: torch.Tensor, questions: Sequence[str],
         seed: int = 0, stages: Optional[int] = None, **method_kwargs: Any) -> List[Dict[str, Any]]:
    """Cascading model-parameter randomisation test.

    The maps of ``method_name`` on ``model`` are compared with its maps on a copy of the model
    whose stages (:func:`cascade_stages`) are re-initialised one after another (cumulatively,
    from the output side), with one ``torch.Generator`` seeded with ``seed``. ``model`` itself
    is not modified. ``stages`` limits the run to the first ``stages`` stages (default: all).

    Returns one dict per stage: ``{"stage": name, "index": i, "spearman": [per-sample float]}``
    (NaN for a sample whose original or randomised map is constant). A method that depends on
    the model's parameters shows correlations that fall as the cascade goes deeper.
    """
    method = methods.get(method_name)
    original = method(model, images, questions, **method_kwargs)
    randomised = ITMAdapter(copy.deepcopy(model.model), model.name, model.grid,
                            model.default_block, model.answers, model.info, dict(model._bound))
    generator = torch.Generator().manual_seed(int(seed))
    results = []
    for index, (name, members) in enumerate(cascade_stages(randomised)[:stages]):
        randomise_(members, generator)
        maps = method(randomised, images, questions, **method_kwargs)
        results.append({"stage": name, "index": index, "spearman": spearman(original, maps)})
    return results


register("sanity_mprt", mprt)
