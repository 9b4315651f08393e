"""Held-out evaluation: ITM accuracy (positives vs hard negatives) and VQA accuracy, overall
and per question family."""
from __future__ import annotations

from collections import defaultdict
from typing import Dict

import numpy as np
import torch

from benchmark.models.protocol import VLModel
from benchmark.training.labels import Pool, fed, segmentation_for


@torch.no_grad()
def evaluate(adapter: VLModel, pool: Pool, batch_size: int = 128, seg_source: str = "exact",
             seed: int = 0) -> Dict[str, object]:
    """Held-out ITM accuracy (positives vs hard negatives) and VQA accuracy, overall and per family."""
    adapter.eval()
    rng = np.random.default_rng(seed)
    itm_hits, vqa_hits = defaultdict(list), defaultdict(list)
    for start in range(0, len(pool.questions), batch_size):
        idx = np.arange(start, min(start + batch_size, len(pool.questions)))
        images = adapter.preprocessing.normalise(pool.images[idx])
        view = fed(adapter, segmentation_for(pool, idx, seg_source, rng))
        tokens = view.visual_tokens(images)
        qs = [pool.questions[i] for i in idx]
        hidden = adapter.text_hidden(tokens, adapter.tokenize(qs))[:, 0]
        match = adapter.match_head(hidden).argmax(-1)
        pred = adapter.answer_head(hidden).argmax(-1)
        neg_rows = [k for k, i in enumerate(idx) if pool.negatives[i] is not None]
        neg_match = torch.zeros(len(idx), dtype=torch.long)
        if neg_rows:
            nh = adapter.text_hidden(tokens[neg_rows],
                                     adapter.tokenize([pool.negatives[idx[k]] for k in neg_rows]))[:, 0]
            neg_match[neg_rows] = adapter.match_head(nh).argmax(-1)
        for k, i in enumerate(idx):
            fam = pool.families[i]
            itm_hits[fam].append(int(match[k]) == int(pool.itm_labels[i]))
            if pool.negatives[i] is not None:
                itm_hits[fam].append(int(neg_match[k]) == 0)
            vqa_hits[fam].append(int(pred[k]) == int(pool.answers[i]))

    def summarise(hits):
        allh = [h for v in hits.values() for h in v]
        return float(np.mean(allh)), {f: float(np.mean(v)) for f, v in sorted(hits.items())}

    itm, itm_f = summarise(itm_hits)
    vqa, vqa_f = summarise(vqa_hits)
    return {"itm_accuracy": itm, "vqa_accuracy": vqa, "itm_by_family": itm_f,
            "vqa_by_family": vqa_f, "n_questions": len(pool.questions)}
