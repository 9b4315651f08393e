"""What every method's call of a model-based metric reads alike, computed once per model and batch.

A deletion curve begins at the image as it is and ends at the image all substrate; an insertion
curve begins at the insertion start and ends at the image; the VQA metrics read the image's
visual tokens, PNP-VQA's captioner its own; faithfulness correlation and infidelity read the
drops under random patch sets. None of these depends on the map, so the engine
computes them once per model weights, batch and settings, on the batch's full set of questions
(the same values whichever method asks first, in whichever process), and passes each metric the
rows of its questions as the keyword its class names in ``shared`` (:class:`metrics.base.
ModelMetric`). A metric called on its own computes them itself.
"""
from __future__ import annotations

import weakref
from typing import Callable, Dict, Optional, Sequence

import torch

from benchmark.engine.config import RunConfig
from benchmark.models.protocol import VLModel
from benchmark.models.tensors import chunked
from benchmark.engine.passes import part
from datasets.segmentation_stream import absent_side_inputs
from metrics.faithfulness_correlation import subset_probabilities
from metrics.perturbation import SUBSTRATES, whole_image_probabilities

#: per model weights: (what, batch, settings) → the batch's values
_MEMO: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _ends(model: VLModel, images: torch.Tensor, recs, cfg: RunConfig, pnp) -> dict:
    """Whole-image match probabilities (NaN where the question does not match its image)."""
    matched = [i for i, r in enumerate(recs) if r.extra.get("itm_label", 1) != 0]
    out = {k: torch.full((len(recs),), float("nan")) for k in ("image", "substrate", "start")}
    if matched:
        sel = torch.tensor(matched)
        probs = whole_image_probabilities(
            model.for_batch(len(recs)).select(sel), images[sel],
            [recs[i].question for i in matched],
            {"image": None, "substrate": SUBSTRATES[cfg.substrate],
             "start": SUBSTRATES[cfg.insertion_start]},
            absent=absent_side_inputs(model, cfg.segmentation, cfg.side_inputs == "consistent"))
        for k, v in probs.items():
            out[k][sel] = v.float().cpu()
    return out


def _tokens(model: VLModel, images: torch.Tensor, recs, cfg: RunConfig, pnp):
    """The model's visual tokens of the unperturbed images (the ``tokens`` VQA mode reads them;
    the ``pixels`` mode encodes its own perturbed images)."""
    if cfg.vqa_mode != "tokens":
        return None
    view = model.for_batch(len(recs))
    with torch.no_grad():
        return chunked(lambda s, e: view.select(slice(s, e)).visual_tokens(images[s:e]),
                       len(recs), model.images_per_forward(256))


def _encoded(model: VLModel, images: torch.Tensor, recs, cfg: RunConfig, pnp):
    """PNP-VQA's captioner tokens of the batch's images."""
    if pnp is None:
        return None
    return pnp.encode(pnp.preprocessing([r.image for r in recs]).to(pnp.device))


def _subsets(model: VLModel, images: torch.Tensor, recs, cfg: RunConfig, pnp,
             runs: int = 32, subset: float = 0.25) -> Optional[dict]:
    """The match probabilities under random patch sets (NaN where the question does not match
    its image) of faithfulness correlation and infidelity."""
    matched = [i for i, r in enumerate(recs) if r.extra.get("itm_label", 1) != 0]
    if not matched:
        return None
    sel = torch.tensor(matched)
    got = subset_probabilities(
        model.for_batch(len(recs)).select(sel), images[sel], [recs[i].question for i in matched],
        [recs[i].sample_id for i in matched], runs, subset, cfg.seed, SUBSTRATES[cfg.substrate],
        absent=absent_side_inputs(model, cfg.segmentation, cfg.side_inputs == "consistent"))
    n = got["removed"].shape[-1]
    out = {"removed": torch.zeros(len(recs), runs, n, dtype=torch.bool),
           "probs": torch.full((len(recs), runs), float("nan"), dtype=torch.float64),
           "image": torch.full((len(recs),), float("nan"), dtype=torch.float64)}
    for k, v in got.items():
        out[k][sel] = v
    return out


COMPUTE: Dict[str, Callable] = {"ends": _ends, "tokens": _tokens, "encoded": _encoded,
                                "subsets": _subsets}


def _rows(value, sel: torch.Tensor):
    if isinstance(value, dict):
        return {k: v[sel.to(v.device)] for k, v in value.items()}
    return value[sel.to(value.device)]


#: shared inputs that cost many passes per question: computed only on the questions the asking
#: metric's run-plan count covers (the same for every method), not the whole batch
PLANNED = {"subsets"}


def shared_inputs(names: Sequence[str], model: VLModel, images: torch.Tensor, recs,
                  cfg: RunConfig, sel: torch.Tensor, pnp=None,
                  options: Optional[Dict[str, object]] = None,
                  cover: Optional[Sequence[int]] = None) -> dict:
    """The shared inputs ``names`` of the batch ``recs``, rows ``sel``, as metric keywords;
    ``options``: the asking metric's options they depend on (its ``shared_options``), part of
    what is shared; ``cover``: the batch positions the asking metric's plan count covers (a
    superset of ``sel``; ``None``: all), where the :data:`PLANNED` inputs are computed."""
    memo = _MEMO.setdefault(model.module, {})
    settings = (cfg.substrate, cfg.insertion_start, cfg.side_inputs, cfg.segmentation,
                cfg.precision, cfg.vqa_mode, cfg.pnp_vqa, tuple(sorted((options or {}).items())))
    out = {}
    for name in names:
        rows = list(range(len(recs))) if cover is None or name not in PLANNED else list(cover)
        key = (name, tuple(recs[i].sample_id for i in rows), settings)
        if key not in memo:
            at = torch.tensor(rows, dtype=torch.long)
            view = model.for_batch(len(recs)).select(at) if len(rows) < len(recs) else model
            with part(f"shared/{name}"):
                memo[key] = COMPUTE[name](view, images[at.to(images.device)],
                                          [recs[i] for i in rows], cfg, pnp, **(options or {}))
        value: Optional[object] = memo[key]
        if value is not None:
            where = {i: k for k, i in enumerate(rows)}
            out[name] = _rows(value, torch.tensor([where[int(i)] for i in sel]))
    return out
