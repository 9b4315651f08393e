"""LAVIS 1.0.2 under ``transformers`` 4.57: the few places where LAVIS relies on 4.26 behaviour,
restored the moment ``lavis`` is first imported, in whatever process imports it.

LAVIS pins ``transformers <4.27``; the suite runs 4.57 (the Hugging Face VLM adapters need it),
with LAVIS installed without its declared dependencies (README, "Install"). Each fix restores
what LAVIS was written against, so its models compute the numbers they compute under 4.26
(fix 5: up to rounding):

1. ``apply_chunking_to_forward``, ``find_pruneable_heads_and_indices`` and
   ``prune_linear_layer`` moved from ``transformers.modeling_utils`` to ``pytorch_utils``;
   ``lavis.models.med``, ``blip2_models.Qformer`` and ``blip_models.nlvr_encoder`` import them
   from the old place.
2. ``PreTrainedModel`` no longer mixes in ``GenerationMixin`` (4.50), so LAVIS's two
   ``BertLMHeadModel``\\ s (the BLIP caption decoder, the Q-Former) would lose ``generate``.
3. ``_expand_inputs_for_generation`` repeats every tensor argument per beam (4.27); LAVIS
   already repeats the image features it passes, so beam search would see them repeated twice.
4. A nested model is initialised once (``_is_hf_initialized``); under 4.26 the outer model's
   ``init_weights`` re-drew the inner one's weights, so seeded random weights would differ.

5. LAVIS's decoders read their cache as ``past``, the name the ``transformers`` BLIP was
   written against used; 4.26 already hands it over as ``past_key_values``, so under LAVIS's own
   pin every step recomputes the whole caption. Handed over under its old name, each step reads
   only the new token, as in BLIP's code: a third less time for PNP-VQA's captions. Not the same
   bits: incremental attention rounds differently (~1e-7), and in the default run one near-tie
   between two words (1e-6 apart) flips one caption of one question (its
   ``pnp_distinct_captions`` 9 → 8; no answer changes).

:func:`install` (called when ``benchmark`` is imported) puts a finder first on ``sys.meta_path``
that applies fix 1 before ``lavis`` executes and the rest right after; it imports nothing itself,
so commands that never touch LAVIS do not pay for importing ``transformers``.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys

#: the helpers fix 1 makes importable from their old place again
MOVED_HELPERS = ("apply_chunking_to_forward", "find_pruneable_heads_and_indices",
                 "prune_linear_layer")
#: the LAVIS modules defining BERT-style ``PreTrainedModel``\ s (fixes 2–5 apply to those)
LAVIS_BERT_MODULES = ("lavis.models.med", "lavis.models.blip2_models.Qformer",
                      "lavis.models.blip_models.nlvr_encoder")
INSTALL_HINT = ("pip install --no-deps salesforce-lavis==1.0.2 (its dependencies are the "
                "project's own; see README, Install)")


def before_import() -> None:
    """Fix 1: the moved helpers, importable from ``transformers.modeling_utils`` again."""
    from transformers import modeling_utils, pytorch_utils

    for name in MOVED_HELPERS:
        if not hasattr(modeling_utils, name):
            setattr(modeling_utils, name, getattr(pytorch_utils, name))


def _expand_as_426(expand_size=1, is_encoder_decoder=False, input_ids=None, **model_kwargs):
    """4.26's expansion: the ids and their masks only (LAVIS repeats its image features)."""
    if input_ids is not None:
        input_ids = input_ids.repeat_interleave(expand_size, dim=0)
    for key in ("token_type_ids", "attention_mask"):
        if model_kwargs.get(key) is not None:
            model_kwargs[key] = model_kwargs[key].repeat_interleave(expand_size, dim=0)
    return input_ids, model_kwargs


def _reading_past(prepare):
    """Fix 5: LAVIS's ``prepare_inputs_for_generation`` given the cache under its old name; an
    empty cache object (what 4.57 starts with) is no cache, as ``None`` was under 4.26."""
    def prepare_inputs_for_generation(self, input_ids, *args, past_key_values=None, **kwargs):
        if isinstance(past_key_values, tuple):
            kwargs["past"] = past_key_values
        return prepare(self, input_ids, *args, **kwargs)
    return prepare_inputs_for_generation


def _reinitialising(init_weights):
    """Fix 4: every submodule re-drawn by the outer model's ``init_weights``, as under 4.26."""
    def reinit(self):
        for module in self.modules():
            module.__dict__.pop("_is_hf_initialized", None)
        init_weights(self)
    return reinit


def after_import() -> None:
    """Fixes 2–5 on the ``PreTrainedModel`` classes of LAVIS's BERT modules (no-ops where
    ``transformers`` already behaves as LAVIS expects)."""
    from transformers import GenerationMixin, PreTrainedModel

    for name in LAVIS_BERT_MODULES:
        module = sys.modules.get(name)
        for cls in vars(module).values() if module else ():
            if not (isinstance(cls, type) and issubclass(cls, PreTrainedModel)
                    and cls.__module__ == name) or "_lavis_compat" in vars(cls):
                continue
            cls._lavis_compat = True
            if cls.__bases__ == (PreTrainedModel,):
                cls.init_weights = _reinitialising(PreTrainedModel.init_weights)
            if "prepare_inputs_for_generation" not in vars(cls):
                continue
            if not issubclass(cls, GenerationMixin):
                cls.__bases__ = cls.__bases__ + (GenerationMixin,)
            cls._expand_inputs_for_generation = staticmethod(_expand_as_426)
            cls.prepare_inputs_for_generation = _reading_past(cls.prepare_inputs_for_generation)


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        before_import()
        self.loader.exec_module(module)
        after_import()


class _LavisFinder(importlib.abc.MetaPathFinder):
    """Finds ``lavis`` as usual and wraps its loader with the fixes."""

    def find_spec(self, fullname, path, target=None):
        if fullname != "lavis":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None:
            raise ModuleNotFoundError(f"LAVIS is not installed: {INSTALL_HINT}", name="lavis")
        spec.loader = _PatchingLoader(spec.loader)
        return spec


def install() -> None:
    """Apply the fixes when ``lavis`` is imported (at once, if it already is); idempotent."""
    if "lavis" in sys.modules:
        before_import()
        after_import()
    elif not any(isinstance(f, _LavisFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _LavisFinder())
