"""Integrated Gradients over a question's token embeddings, the image held fixed: the adaptive
nested rule of the pixel maps (:mod:`methods._adaptive_path`) on the path from ``[PAD]`` to the
question in the model's text embedding space."""
from __future__ import annotations

from typing import Optional

import torch

from benchmark.models.protocol import VLModel
from benchmark.models.tensors import TextBatch
from methods._adaptive_path import integrate_values
from methods._capture import capture
from methods.base import question_tokens, target_score


def token_ig(model: VLModel, images: torch.Tensor, text: TextBatch, target: str,
             rel_tolerance: float, max_nodes: int, batch: int) -> Optional[torch.Tensor]:
    """(B, L) IG of each question token's embedding (its path derivative's terms summed over the
    features) for ``target``. The path starts at the embeddings of the question with ``[PAD]``
    at every question position (``[ENC]``, ``[SEP]`` and the positions kept, as captum's BERT
    tutorial does) and ends at the question's; integrated by the adaptive rule until its
    completeness gap is at most ``rel_tolerance`` of f(question) − f(start), with at most
    ``max_nodes`` nodes; a question that does not converge gets NaN. ``None`` where the model
    has no token embedding site or no ``[PAD]``."""
    site = model.text_embedding_site() if model.rows_are_tokens else None
    pad = getattr(getattr(model, "tokenizer", None), "pad_token_id", None)
    if site is None or pad is None:
        return None
    rows = model.cross_attention_rows(text) > 0
    start = TextBatch(torch.where(rows, torch.full_like(text.input_ids, pad), text.input_ids),
                      text.attention_mask)
    with torch.no_grad(), capture({"e": site}) as rec:
        image_embeds = model.visual_tokens(images)
        for ends in (start, text):
            target_score(model, image_embeds, ends, target)
    e0, e1 = (t.detach() for t in rec.outputs["e"])

    def values(paths: torch.Tensor, alphas: torch.Tensor):
        fs, cs = [], []
        for lo in range(0, len(paths), batch):
            p, a = paths[lo:lo + batch], alphas[lo:lo + batch].to(e0)
            diff = e1[p] - e0[p]
            point = (e0[p] + a.view(-1, 1, 1) * diff).requires_grad_(True)
            handle = site.register_forward_hook(lambda *_: point)
            try:
                with torch.enable_grad():
                    score = target_score(model, image_embeds[p], TextBatch(
                        text.input_ids[p], text.attention_mask[p]), target)
                    (grad,) = torch.autograd.grad(score.sum(), point)
            finally:
                handle.remove()
            fs.append(score.detach().double().cpu())
            cs.append((grad * diff).sum(-1).double().cpu())
        return torch.cat(fs), torch.cat(cs)

    per_token, _, _, _, done = integrate_values(values, len(e0), rel_tolerance, max_nodes)
    per_token = per_token.float()
    per_token[~done] = float("nan")
    return question_tokens(per_token, model, text)
