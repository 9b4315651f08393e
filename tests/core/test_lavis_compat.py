"""LAVIS under the suite's ``transformers`` computes what it computed under its own pin (4.26.1):
one test per fix of :mod:`benchmark.core.lavis_compat`, against the values recorded under 4.26.1
(``tests/fixtures/lavis_reference.py``). Every CLI test's worker processes import LAVIS through
the layer too (it is installed by ``import benchmark``)."""
import json

import pytest
import torch

from benchmark.core import lavis_compat
from tests.fixtures import lavis_reference as ref

RECORDED = json.loads(ref.RECORD.read_text())


def test_the_record_is_lavis_own_transformers():
    assert RECORDED["transformers"] == "4.26.1"


def test_the_moved_helpers_import_from_their_old_place():
    from lavis.models.blip_models import nlvr_encoder  # imports them from the old place
    from transformers import modeling_utils, pytorch_utils

    assert nlvr_encoder.prune_linear_layer is pytorch_utils.prune_linear_layer
    for name in lavis_compat.MOVED_HELPERS:
        assert getattr(modeling_utils, name) is getattr(pytorch_utils, name)


def test_seeded_random_weights_are_426s():
    assert ref.weights_digest(ref.caption_decoder()) == RECORDED["caption_decoder_init"]
    assert ref.weights_digest(ref.qformer()) == RECORDED["qformer_init"]


def test_both_text_decoders_generate():
    from lavis.models.blip2_models.Qformer import BertLMHeadModel as QformerLM
    from lavis.models.med import BertLMHeadModel

    assert BertLMHeadModel.can_generate() and QformerLM.can_generate()


@pytest.mark.parametrize("mode,options", [
    ("greedy", {}), ("beam", {"num_beams": 3}),
    ("nucleus", {"do_sample": True, "top_p": 0.9, "repetition_penalty": 1.1})])
def test_captions_are_426s_token_for_token(mode, options):
    decoder = ref.caption_decoder()
    torch.manual_seed(3)
    assert ref.captions(decoder, **options) == RECORDED[mode]


def test_decoding_reads_its_cache_one_new_token_a_step():
    """Fix 5: after the prompt, every step hands the decoder one new token (under LAVIS's own
    pin it recomputed the whole caption); the captions stay the 4.26 ones (tests above)."""
    decoder = ref.caption_decoder()
    lengths = []
    hook = decoder.bert.embeddings.register_forward_pre_hook(
        lambda _, args, kwargs: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    try:
        ref.captions(decoder)
    finally:
        hook.remove()
    assert lengths[0] == 3 and len(lengths) > 2 and set(lengths[1:]) == {1}


def test_lavis_missing_is_one_line_saying_how_to_install(tmp_path):
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps salesforce-lavis"):
        lavis_compat._LavisFinder().find_spec("lavis", [str(tmp_path)])
