"""MM-SHAP (Parcalabescu & Frank, "MM-SHAP: A performance-agnostic metric for measuring
multimodal contributions in vision and language models & tasks", ACL 2023): how much of the
model's match score the question accounts for, against the image."""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
import torch

from benchmark.core.options import Option, at_least
from benchmark.core.seeds import sample_rng
from benchmark.models.protocol import VLModel
from benchmark.models.tensors import TextBatch, chunked
from metrics import register
from metrics.base import ModalityMetric
from metrics.perturbation import Substrate, to_pixels

#: the purpose of a sample's permutations (:func:`benchmark.core.seeds.sample_rng`)
PERMUTATIONS = 47


def patch_groups(grid: tuple, groups: tuple) -> np.ndarray:
    """(N,) the image player of each patch: the grid cut into ``groups`` (gy, gx) blocks."""
    gh, gw = grid
    rows, cols = np.divmod(np.arange(gh * gw), gw)
    return (rows * groups[0] // gh) * groups[1] + cols * groups[1] // gw


def shapley(model: VLModel, image: torch.Tensor, question: str, sample_id: str, seed: int,
            permutations: int = 4, groups: tuple = (4, 4),
            substrate: Substrate = torch.zeros_like,
            absent: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, np.ndarray]:
    """Shapley values of the match probability of one (image, question) over its players —
    each question token (the model's question rows; ``[ENC]``, ``[SEP]`` always present) and
    each block of patches — by permutation sampling: ``permutations`` orders drawn from (run
    seed, sample id), each with its reverse (antithetic), every player's marginal
    contribution averaged. An absent token is left out of the attention mask; an absent
    block shows the substrate (a fused model's segmentation stream reads it as absent). Exact
    for a score without interactions. Returns ``text`` (T,) and ``image`` (G,) values."""
    text = model.tokenize([question])
    tokens = torch.nonzero(model.cross_attention_rows(text)[0] > 0).flatten().cpu()
    owner = torch.from_numpy(patch_groups(model.grid, groups))
    n_text, n_players = len(tokens), len(tokens) + groups[0] * groups[1]
    rng = sample_rng(seed, sample_id, PERMUTATIONS)
    orders = [rng.permutation(n_players) for _ in range(permutations)]
    orders += [o[::-1] for o in orders]
    present = torch.zeros(len(orders), n_players + 1, n_players, dtype=torch.bool)
    for k, order in enumerate(orders):
        for step, player in enumerate(order):
            present[k, step + 1:, player] = True
    present = present.reshape(-1, n_players)
    f = _scores(model, image, text, tokens, owner, present, n_text, substrate, absent)
    gain = (f.reshape(len(orders), n_players + 1)[:, 1:]
            - f.reshape(len(orders), n_players + 1)[:, :-1])
    values = np.zeros(n_players)
    for k, order in enumerate(orders):
        values[order] += gain[k]
    values /= len(orders)
    return {"text": values[:n_text], "image": values[n_text:]}


def _scores(model: VLModel, image, text: TextBatch, tokens, owner, present, n_text: int,
            substrate: Substrate, absent) -> np.ndarray:
    """Match probability of the image and question with only the ``present`` players."""
    m = present.shape[0]
    mask = text.attention_mask.cpu().repeat(m, 1)
    mask[:, tokens] = present[:, :n_text].long()
    removed = ~present[:, n_text:][:, owner]  # (M, N) patches of absent blocks
    pixels = to_pixels(removed[None], model.grid, image.shape[-2:])[0][:, None]
    shown = torch.where(pixels.to(image.device), substrate(image[None]), image[None])
    batch = TextBatch(text.input_ids.cpu().repeat(m, 1), mask).to(image.device)
    view = model.for_batch(1).expanded(m).removing(removed.to(image.device), absent)
    with torch.no_grad():
        return chunked(lambda s, e: view.select(slice(s, e)).match_probability(
            shown[s:e], batch[s:e]), m, model.images_per_forward(256)).double().cpu().numpy()


def t_shap(values: Dict[str, np.ndarray]) -> float:
    """The textual share: Σ|φ_text| / (Σ|φ_text| + Σ|φ_image|) (NaN when both are 0)."""
    text, image = np.abs(values["text"]).sum(), np.abs(values["image"]).sum()
    return float(text / (text + image)) if text + image > 0 else float("nan")


@register("mm_shap")
class MMShap(ModalityMetric):
    """MM-SHAP's textual share T-SHAP of the match probability (V-SHAP = 1 − T-SHAP): per
    question, :func:`shapley` over its question tokens and ``groups`` blocks of patches, then
    :func:`t_shap`. 0.5 is not "balanced" in any absolute sense — it depends on how many players
    each side has — so it compares models (the fused beside the baseline) and question types,
    on the same players. Cost: 2 × ``permutations`` × (players + 1) passes per question."""

    permutations = Option("permutations", int, 4, "orders drawn per question, each also "
                          "reversed", validate=at_least(1))
    groups = Option("groups", int, 4, "the image's players: the patch grid cut into "
                    "groups × groups blocks", validate=at_least(1))

    def __call__(self, model: VLModel, images: torch.Tensor, records: Sequence, seed: int = 0,
                 substrate: Substrate = torch.zeros_like,
                 absent: Optional[Dict[str, torch.Tensor]] = None, **_) -> list:
        rows, view = [], model.for_batch(len(records))
        for i, r in enumerate(records):
            values = shapley(view.select(slice(i, i + 1)), images[i], r.question, r.sample_id,
                             seed, self.permutations, (self.groups, self.groups), substrate,
                             absent)
            rows.append({"model": model.name, "sample_id": r.sample_id,
                         "question_type": r.family, "t_shap": t_shap(values),
                         "players": len(values["text"]) + len(values["image"])})
        return rows
