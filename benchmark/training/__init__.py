"""Training and held-out evaluation of the embedded tiny models on the synthetic data:
:mod:`~benchmark.training.labels` (what the scenes teach), :mod:`~benchmark.training.recipe`
(views and losses), :mod:`~benchmark.training.loop` (optimisation) and
:mod:`~benchmark.training.evaluation` (held-out accuracy).

Recipe (what made a ~1.3M-parameter model learn hard-negative ITM and VQA on 2 CPU cores):

* a convolutional patch stem (see :mod:`benchmark.models.tiny`);
* dense auxiliary supervision: per patch, the colour / shape / size of the object under it
  (cross-entropy, weight ``aux_weight``), so the visual tokens carry the attributes questions use;
* ITM with a negative curriculum: each positive question is paired with a negative that is, with
  probability ``p_hard`` (ramped from ``hard_start`` to 1 over the first ``hard_ramp`` of training),
  a hard negative (one colour/shape word swapped so no object matches) and otherwise another
  sample's question that has no referent in this image;
* the VQA answer head trained on the same forward pass (cross-entropy over the answer set);
* word grounding from the scene maps (weight ``ground_weight``): in every cross-attention layer
  that feeds the next one, each colour or shape word's head-mean attention should fall on the
  patches of objects with that attribute (−log of that attention mass) — word-level, so how the
  words of a question combine is left to the model;
* partial views (probability ``partial_prob`` per sample): the text encoder reads only a random
  subset of the patches (a fraction drawn from [``partial_min``, 1], image CLS hidden), as
  PNP-VQA's answerer reads only the patches a heatmap selects. Those rows train the answer head
  and the word grounding on what is visible; ITM and the word-attribute loss, whose labels may
  depend on hidden patches, use the full-view rows only;
* AdamW, linear warm-up then cosine decay, gradient clipping; fixed seeds, a fixed number of steps;
* a second, short stage of evidence views (``evidence_steps`` at ``evidence_lr``): with probability
  ``evidence_prob`` a sample reads every patch its answer depends on (the generator's evidence
  mask) plus a random share of the others, so the answer is unchanged by construction. Random
  partial views alone teach the answerer to read context from any patches; with softmax
  cross-attention it then counts by the share of attended patches, and answers count questions
  wrongly from the few patches a heatmap selects. This stage starts from the first stage's
  weights with its own seed and optimiser, so it can also be run on a saved first stage.
"""
from benchmark.training.evaluation import evaluate
from benchmark.training.labels import (Pool, build_pool, evidence_patches, patch_targets,
                                          word_patch_sets)
from benchmark.training.loop import train
from benchmark.training.recipe import (TrainConfig, evidence_views, grounding_loss,
                                          partial_views)

__all__ = ["Pool", "TrainConfig", "build_pool", "evaluate", "evidence_patches",
           "evidence_views", "grounding_loss", "partial_views", "patch_targets", "train",
           "word_patch_sets"]
