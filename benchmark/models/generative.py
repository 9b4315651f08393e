"""Decoder-only generative VLMs (LLaVA-class: an image encoder whose projected patches are
spliced into a language model's input), explained through their answer
(:mod:`benchmark.models.answered`).

* The visual tokens are the projected patches with an all-zero row 0 in the place of an image
  CLS, which the language model does not read (the row methods drop as "CLS").
* The sequence is laid out so that every sample's image tokens and answer rows sit at the same
  positions: ``[prompt before the image][image tokens][padding][rest of the prompt, with the
  question][answer, padded]``, padding masked and positions counted over real tokens only.
* Attention probabilities pass through :class:`AttentionSite` modules (a registered attention
  function, the eager one with the sites added): ``text_self`` sites see the decoder's whole
  (B, H, T, T) attention, ``text_cross`` sites the block from the rows that predict the
  answer's tokens to the image tokens, (B, H, A, 1 + N) with column 0 the absent CLS, and
  ``vision`` sites the image encoder's (B, H, 1 + N, 1 + N).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.models.answered import AnswerExplained, answer_logprob_of
from benchmark.models.protocol import Member
from benchmark.models.tensors import TextBatch

#: the attention implementation the adapters load their models with
ATTENTION = "vqa_xai_sites"


class AttentionSite(nn.Module):
    """Where one attention layer's probabilities pass. ``probs`` sees them whole; with a
    ``layout`` (rows, columns) set, ``block`` sees those rows × a zero column then those
    columns. Both are identities: the forward is unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.probs = nn.Identity()
        self.block = nn.Identity()
        self.layout: Optional[Tuple[slice, slice]] = None

    def forward(self, probs: torch.Tensor) -> torch.Tensor:
        probs = self.probs(probs)
        if self.layout is None:
            return probs
        rows, cols = self.layout
        block = self.block(F.pad(probs[:, :, rows, cols], (1, 0)))
        out = probs.clone()
        out[:, :, rows, cols] = block[..., 1:]
        return out


def site_attention(module, query, key, value, attention_mask, scaling, dropout=0.0, **_):
    """Eager attention (as ``transformers``' own), the probabilities passed through the
    module's :class:`AttentionSite`."""
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key, value = (t.repeat_interleave(groups, dim=1) for t in (key, value))
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask[:, :, :, : key.shape[-2]]
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    weights = module.attention_site(weights)
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def register_site_attention() -> None:
    """Make :data:`ATTENTION` a ``transformers`` attention implementation (eager masks)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, eager_mask

    AttentionInterface.register(ATTENTION, site_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, eager_mask)


def add_sites(attention_modules: Sequence[nn.Module]) -> None:
    """One :class:`AttentionSite` on each attention module (no parameters: weights unchanged)."""
    for module in attention_modules:
        module.attention_site = AttentionSite()


@dataclass
class PromptLayout:
    """The prompt: ``template`` (with ``{question}``) holds one ``image_token`` at token
    position ``image_at``, which stands for ``n_image`` image tokens."""

    template: str
    image_token: int
    n_image: int
    image_at: int


def prompt_layout(tokenizer, template: str, image_token: int, n_image: int) -> PromptLayout:
    """The layout of ``template`` as ``tokenizer`` reads it (one-line error without exactly one
    image token or a ``{question}``)."""
    if "{question}" not in template:
        raise ValueError(f"prompt {template!r} has no {{question}}")
    ids = tokenizer(template.format(question="?")).input_ids
    if ids.count(image_token) != 1:
        raise ValueError(f"prompt {template!r} must hold the image token once "
                         f"(id {image_token}; it holds it {ids.count(image_token)} times)")
    return PromptLayout(template, image_token, n_image, ids.index(image_token))


@dataclass
class GenerativeVLM(AnswerExplained):
    """``module``: the HF model; ``layout``: the prompt's. Subclasses provide
    :meth:`image_features`, :meth:`vision_attention` and the randomisation stages; the language
    model's parts default to the layout of HF's ``*ForConditionalGeneration`` VLMs
    (:attr:`language_model` ``module.model.language_model``, :attr:`lm_head`
    ``module.lm_head``)."""

    layout: Optional[PromptLayout] = None
    rows_are_tokens = False
    decoder_only = True

    # ------------------------------------------------------------- for subclasses to provide
    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, N, D) projected patches, raster order."""
        raise NotImplementedError

    @property
    def language_model(self) -> nn.Module:
        """The decoder (without its head) that reads the image tokens."""
        return self.module.model.language_model

    @property
    def lm_head(self) -> nn.Module:
        return self.module.lm_head

    def embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.module.get_input_embeddings()(ids)

    def decode(self, embeds: torch.Tensor, mask: torch.Tensor,
               positions: torch.Tensor) -> torch.Tensor:
        """(B, T, D) the language model's last hidden states."""
        return self.language_model(inputs_embeds=embeds, attention_mask=mask,
                                   position_ids=positions, use_cache=False).last_hidden_state

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, T, V) next-token logits of hidden states."""
        return self.lm_head(hidden)

    def decoder_attention(self) -> List[nn.Module]:
        return [layer.self_attn for layer in self.language_model.layers]

    def decoder_stages(self) -> List[Tuple[str, List[Member]]]:
        """The language model's randomisation stages, top-down: ``lm_head``; ``decoder_norm``;
        ``decoder_layer_{i}`` last to first; ``token_embeddings``."""
        lm, layers = self.language_model, list(self.language_model.layers)
        return ([("lm_head", [self.lm_head]), ("decoder_norm", [lm.norm])]
                + [(f"decoder_layer_{i}", [layers[i]]) for i in reversed(range(len(layers)))]
                + [("token_embeddings", [lm.embed_tokens])])

    def vision_attention(self) -> List[nn.Module]:
        raise NotImplementedError

    # ------------------------------------------------------------- the protocol
    def tokenize(self, questions: Sequence[str]) -> TextBatch:
        """Each question in the prompt template, tokenised whole as the model's processor does,
        its one image token taken out (:meth:`_forward` puts the image there) and the padding
        put in its place, so that every prompt ends where the answer starts."""
        lay, ids = self.layout, []
        for q in questions:
            row = self.prompt_ids(q)
            if row[lay.image_at] != lay.image_token or row.count(lay.image_token) != 1:
                raise ValueError(f"model {self.name!r}: question {q!r} moves the prompt's image "
                                 "token; questions may not contain it")
            ids.append(row[:lay.image_at] + row[lay.image_at + 1:])
        width, at = max(len(i) for i in ids), lay.image_at
        pad = self.tokenizer.pad_token_id or 0
        input_ids = torch.tensor([i[:at] + [pad] * (width - len(i)) + i[at:] for i in ids])
        mask = torch.tensor([[1] * at + [0] * (width - len(i)) + [1] * (len(i) - at)
                             for i in ids])
        return TextBatch(input_ids, mask).to(self.device)

    def prompt_ids(self, question: str) -> List[int]:
        """The prompt's token ids as the model's processor writes them, the image token once."""
        return self.tokenizer(self.layout.template.format(question=question)).input_ids

    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        return F.pad(self.image_features(images), (0, 0, 1, 0))

    def attention_sites(self, kind: str) -> List[nn.Module]:
        if kind == "vision":
            return [m.attention_site.probs for m in self.vision_attention()]
        if kind in ("text_self", "text_cross"):
            part = "probs" if kind == "text_self" else "block"
            return [getattr(m.attention_site, part) for m in self.decoder_attention()]
        if kind == "fusion":
            return []
        raise ValueError(f"unknown attention kind {kind!r}")

    @property
    def suppressed(self) -> Tuple[int, ...]:
        return (self.layout.image_token,)  # text only: an answer is never an image

    def answer_logprob(self, image_embeds: torch.Tensor, text: TextBatch, answer: torch.Tensor,
                       image_atts: Optional[torch.Tensor]) -> torch.Tensor:
        hidden, start = self._forward(image_embeds, text, answer, image_atts)
        return answer_logprob_of(self.logits(hidden[:, start - 1:start - 1 + answer.shape[1]]),
                                 answer)

    def next_logits(self, image_embeds: torch.Tensor, text: TextBatch, answer: torch.Tensor,
                    image_atts: Optional[torch.Tensor]) -> torch.Tensor:
        hidden, start = self._forward(image_embeds, text, answer, image_atts)
        return self.logits(hidden[:, start + answer.shape[1] - 1])

    def decoder_block(self, full: torch.Tensor) -> torch.Tensor:
        rows, cols = self.decoder_attention()[0].attention_site.layout
        return F.pad(full[:, :, rows, cols], (1, 0))

    def cross_attention_rows(self, text: TextBatch) -> torch.Tensor:
        """The rows of the ``text_cross`` block: those predicting a token of the answer."""
        return (self.side("answer", text.input_ids.shape[0]) >= 0).float()

    # ------------------------------------------------------------- the sequence
    def _forward(self, image_embeds: torch.Tensor, text: TextBatch, answer: torch.Tensor,
                 image_atts: Optional[torch.Tensor]) -> Tuple[torch.Tensor, int]:
        """(B, T, D) hidden states of the laid-out sequence and the answer's first position. Patches
        dropped by ``image_atts`` are masked out but keep their positions."""
        lay, b, dev = self.layout, image_embeds.shape[0], image_embeds.device
        at, n, known = lay.image_at, lay.n_image, (answer >= 0).long()
        ones = torch.ones(b, n, dtype=torch.long, device=dev)
        ids = torch.cat([text.input_ids[:, :at], ones * lay.image_token, text.input_ids[:, at:],
                         answer.clamp(min=0)], 1)
        mask = text.attention_mask.long()
        seen = ones if image_atts is None else image_atts[:, 1:].long()
        counted = torch.cat([mask[:, :at], ones, mask[:, at:], known], 1)
        mask = torch.cat([mask[:, :at], seen, mask[:, at:], known], 1)
        embeds = self.embed_tokens(ids)
        embeds = torch.cat([embeds[:, :at], image_embeds[:, 1:].to(embeds.dtype),
                            embeds[:, at + n:]], 1)
        start = ids.shape[1] - answer.shape[1]
        self._set_layout((slice(start - 1, start - 1 + answer.shape[1]), slice(at, at + n)))
        return self.decode(embeds, mask, self.positions(ids, counted)), start

    def positions(self, ids: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
        """Position ids of the laid-out sequence ``ids``: 1-D, over the ``counted`` tokens
        (padding is not counted; masked patches are)."""
        return (counted.cumsum(1) - 1).clamp(min=0)

    def _set_layout(self, layout) -> None:
        for module in self.decoder_attention():
            module.attention_site.layout = layout
