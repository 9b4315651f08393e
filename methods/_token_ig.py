"""Integrated Gradients over a question's token embeddings: captum's
``LayerIntegratedGradients`` on the model's text embedding layer, the image held fixed."""
from __future__ import annotations

from typing import Optional

import torch

from benchmark.models.protocol import VLModel
from benchmark.models.tensors import TextBatch
from methods.base import question_tokens, target_score


def token_ig(model: VLModel, images: torch.Tensor, text: TextBatch, target: str, n_steps: int,
             max_steps: int, rel_tolerance: float, batch: int) -> Optional[torch.Tensor]:
    """(B, L) IG of each question token's embedding (summed over its features) for ``target``,
    the path from ``[PAD]`` at every question position (``[ENC]``, ``[SEP]`` and the positions
    kept, as captum's BERT tutorial does) to the question, by captum's Gauss–Legendre rule at
    ``n_steps``, again at 4× the steps (up to ``max_steps``) for the samples whose relative
    completeness error exceeds ``rel_tolerance``; a sample still above it gets NaN (not
    converged). ``None`` where the model has no token embedding site or no ``[PAD]``."""
    from captum.attr import LayerIntegratedGradients

    site = model.text_embedding_site() if model.rows_are_tokens else None
    pad = getattr(getattr(model, "tokenizer", None), "pad_token_id", None)
    if site is None or pad is None:
        return None
    rows = model.cross_attention_rows(text) > 0
    start = torch.where(rows, torch.full_like(text.input_ids, pad), text.input_ids)
    with torch.no_grad():
        image_embeds = model.visual_tokens(images)

    def score(input_ids, attention_mask, embeds):
        return target_score(model, embeds, TextBatch(input_ids, attention_mask), target)

    with torch.no_grad():
        change = score(text.input_ids, text.attention_mask, image_embeds) - \
            score(start, text.attention_mask, image_embeds)
    per_token = torch.full(text.input_ids.shape, float("nan"))
    todo, steps = torch.arange(len(start)), n_steps
    while len(todo):  # steps × 4 for the samples not yet converged
        with torch.enable_grad():
            attr, delta = LayerIntegratedGradients(score, site).attribute(
                text.input_ids[todo], baselines=start[todo], n_steps=steps,
                internal_batch_size=batch, return_convergence_delta=True,
                additional_forward_args=(text.attention_mask[todo], image_embeds[todo]))
        done = delta.detach().abs() <= rel_tolerance * change[todo].abs()
        per_token[todo[done]] = attr.detach()[done].sum(-1).float().cpu()
        todo, steps = todo[~done], steps * 4
        if steps > max_steps:
            break
    return question_tokens(per_token, model, text)
