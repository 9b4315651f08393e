"""The model protocol: everything methods, metrics, sanity checks and the engine may ask of a
model. A new model family is one subclass of :class:`VLModel` in one file.

A model is seen as an image-text matching transformer: a visual encoder turns images into
visual tokens (image CLS first, then the patch grid in raster order), a text encoder reads the
tokenised question and cross-attends to those tokens, and heads read the text encoder's first
(``[ENC]``) output: the match head (2 logits: no-match, match) and optionally a VQA answer head.
Attention probabilities are exposed as *sites*: modules whose forward output is a
(B, heads, queries, keys) probability tensor, hooked with :func:`methods._capture.capture`.

Inputs other than the image (a fused model's segmentation stream) are *side inputs*, passed
explicitly: ``model.given(segmentation=seg)`` is a view of the same weights that feeds them to
every forward on it, repeated for batches that expand each sample (IG paths, perturbation curves).
"""
from __future__ import annotations

import abc
import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import nn

from benchmark.models.tensors import FusionAttention, Preprocessing, TextBatch

#: what the attention sites of :meth:`VLModel.attention_sites` may be asked for, with layout
ATTENTION_KINDS = {
    "vision": "image self-attention of the visual backbone, one site per block: (B, H, 1+N, 1+N)",
    "fusion": "fusion-encoder attention, one site per layer, called per stream and repeat "
              "(decode with VLModel.fusion_attention)",
    "text_self": "text self-attention, one site per text layer: (B, H, L, L)",
    "text_cross": "text-to-image cross-attention, one site per text layer: (B, H, L, 1+N)",
}
#: a randomisation-stage member: a module (all its parameters, recursively) or one parameter
Member = Union[nn.Module, nn.Parameter]


@dataclass
class VLModel(abc.ABC):
    """A vision-language model behind the suite's contract (see the module docstring).

    Attributes:
        module: the wrapped ``nn.Module`` (all weights).
        name: registry name.
        grid: ``(gh, gw)`` patch grid of the visual tokens (image CLS excluded).
        default_block: the cross-attention layer PNP-VQA-style Grad-CAM reads by default.
        preprocessing: how raw images become the model's input (owned by the model).
        answers: the VQA head's answer list (empty without a VQA head).
        info: fingerprint, held-out accuracies, config — copied into the run manifest.
        inputs: bound side inputs (see :meth:`given`).
        max_batch_images: the most images one forward may take (``None``: unbounded), set by
            the engine from the run's memory budget (:mod:`benchmark.models.memory`); see
            :meth:`images_per_forward`.
    """

    module: nn.Module
    name: str
    grid: tuple
    default_block: int
    preprocessing: Preprocessing
    answers: Sequence[str] = ()
    info: Dict[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, torch.Tensor] = field(default_factory=dict, repr=False)
    max_batch_images: Optional[int] = None
    #: side inputs the model reads (e.g. ``("segmentation",)``; :meth:`side_input_classes`)
    side_inputs: ClassVar[Tuple[str, ...]] = ()
    #: its cross-attention rows are the question's tokens (BLIP; not BLIP-2's queries)
    rows_are_tokens: ClassVar[bool] = True
    #: its score reads only the ``[ENC]`` output row (a head; not BLIP's VQA answer decoder)
    reads_first_row: ClassVar[bool] = True
    #: it binds what it derives from each clean batch before any method or metric reads the
    #: batch (:meth:`prepared`: the answer a generative model writes)
    prepares: ClassVar[bool] = False
    #: it answers by writing its answer (:meth:`greedy_texts`), not with a head over a list
    writes_answers: ClassVar[bool] = False
    #: a decoder-only language model reads the image tokens: ``text_self`` sites see its
    #: (B, H, T, T) attention, ``text_cross`` its answer rows × image tokens (``decoder_block``)
    decoder_only: ClassVar[bool] = False

    # ------------------------------------------------------------- for subclasses to provide
    @abc.abstractmethod
    def tokenize(self, questions: Sequence[str]) -> TextBatch:
        """Questions as the model's text encoder reads them, on the model's device."""

    @abc.abstractmethod
    def visual_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1 + gh·gw, D) tokens the text encoder cross-attends to (side inputs applied)."""

    @abc.abstractmethod
    def text_hidden(self, image_embeds: torch.Tensor, text: TextBatch,
                    image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, L, Dt) last hidden states of the text encoder; ``image_atts`` (B, 1+N) restricts
        which visual tokens it reads (1 = readable)."""

    @abc.abstractmethod
    def match_head(self, enc_hidden: torch.Tensor) -> torch.Tensor:
        """(B, 2) ITM logits (no-match, match) from the ``[ENC]`` output."""

    def answer_head(self, enc_hidden: torch.Tensor) -> torch.Tensor:
        """(B, n_answers) VQA logits from the ``[ENC]`` output (``ValueError`` without one)."""
        raise ValueError(f"model {self.name!r} has no VQA answer head")

    @abc.abstractmethod
    def attention_sites(self, kind: str) -> List[nn.Module]:
        """Modules whose forward output is attention probabilities, in forward order, for a kind
        of :data:`ATTENTION_KINDS` (empty where the model has none of that kind)."""

    def text_embedding_site(self) -> Optional[nn.Module]:
        """The module whose output is the (B, L, D) token embeddings the text layers read, one
        row per position of :meth:`tokenize` (``None``: the rows are not the question's)."""
        return None

    def prepared(self, images: torch.Tensor, questions: Sequence[str]) -> "VLModel":
        """The view with what it derives from the clean batch bound (:attr:`prepares`)."""
        return self

    def decoder_block(self, full: torch.Tensor) -> torch.Tensor:
        """(B, K, T, T) over a decoder-only model's last sequence → its ``text_cross`` block."""
        raise ValueError(f"model {self.name!r} is not a decoder-only model")

    def fusion_attention(self, calls: Sequence[List[torch.Tensor]]) -> FusionAttention:
        """Decode the recorded calls of the ``"fusion"`` sites (one list per site) into streams."""
        return FusionAttention()

    @abc.abstractmethod
    def randomisation_stages(self) -> List[Tuple[str, List[Member]]]:
        """The sanity checks' cascade, output side first, covering every parameter the forward
        uses: ``[(stage name, members), …]``."""

    def side_input_classes(self, key: str) -> Optional[int]:
        """Channels of side input ``key`` (e.g. segmentation classes); ``None`` if not read."""
        return None

    # ------------------------------------------------------------- shared behaviour
    @property
    def has_answer_head(self) -> bool:
        return len(self.answers) > 0

    @property
    def answers_questions(self) -> bool:
        """It answers a question (:meth:`predict_answers`): a VQA head, or an answer it writes."""
        return self.has_answer_head or self.writes_answers

    @property
    def image_size(self) -> int:
        return self.preprocessing.image_size

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def fingerprint(self) -> str:
        return str(self.info.get("fingerprint", ""))

    def images_per_forward(self, cap: int) -> int:
        """How many images a batched pass of this model may take: ``cap`` (the caller's own
        bound) within :attr:`max_batch_images`."""
        return min(cap, self.max_batch_images or cap)

    def bounded(self, max_batch_images: Optional[int]) -> "VLModel":
        """The view whose forwards take at most ``max_batch_images`` images."""
        return dataclasses.replace(self, max_batch_images=max_batch_images)

    def to(self, device: Union[str, torch.device]) -> "VLModel":
        self.module.to(device)
        return self

    def eval(self) -> "VLModel":
        self.module.eval()
        return self

    def clone(self) -> "VLModel":
        """An independent copy of the weights (for the sanity checks' randomisation), with the
        same side inputs."""
        return dataclasses.replace(self, module=copy.deepcopy(self.module))

    def preprocess(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """(H, W, 3) uint8 images as the model's input batch, on its device."""
        return self.preprocessing(arrays).to(self.device)

    def given(self, **inputs: Optional[torch.Tensor]) -> "VLModel":
        """A view of the same weights with side inputs bound (``None`` values are ignored)."""
        inputs = {k: v for k, v in inputs.items() if v is not None}
        unknown = sorted(set(inputs) - set(self.side_inputs))
        if unknown:
            raise ValueError(f"model {self.name!r} reads no side input {unknown[0]!r} "
                             f"(it reads: {', '.join(self.side_inputs) or 'none'})")
        return dataclasses.replace(self, inputs={**self.inputs, **inputs})

    def side(self, key: str, batch: int) -> Optional[torch.Tensor]:
        """Side input ``key`` matched to a batch of ``batch`` images (each row repeated when the
        batch expands every sample into ``batch / rows`` images)."""
        value = self.inputs.get(key)
        if value is None or value.shape[0] == batch:
            return value
        if batch % value.shape[0]:
            raise ValueError(f"side input {key!r} has {value.shape[0]} rows for a batch of {batch}")
        return value.repeat_interleave(batch // value.shape[0], 0)

    def for_batch(self, batch: int) -> "VLModel":
        """The view whose side inputs are matched to a batch of ``batch`` images (:meth:`side`)."""
        return dataclasses.replace(self, inputs={k: self.side(k, batch) for k in self.inputs})

    def select(self, index) -> "VLModel":
        """The view whose side inputs are rows ``index`` (a slice or index tensor) of these."""
        return dataclasses.replace(self, inputs={k: v[index] for k, v in self.inputs.items()})

    def removing(self, removed: torch.Tensor,
                 absent: Optional[Mapping[str, torch.Tensor]] = None) -> "VLModel":
        """The view for a batch of perturbed images whose patches ``removed`` (R, N) bool show
        the perturbation's substrate instead of their content: each per-patch side input named
        in ``absent`` reads ``absent[key]`` (one patch's value, e.g. a background class
        histogram) at those patches, so that it says what the pixels say (a fused model's
        segmentation stream must not keep showing an object whose pixels were deleted)."""
        inputs = dict(self.inputs)
        for key, value in (absent or {}).items():
            side = self.side(key, removed.shape[0])
            if side is not None:
                inputs[key] = torch.where(removed.to(side.device)[..., None],
                                          value.to(side), side)
        return dataclasses.replace(self, inputs=inputs)

    def expanded(self, n: int) -> "VLModel":
        """The view for a batch where every sample is repeated ``n`` times in a row."""
        return dataclasses.replace(self, inputs={k: v.repeat_interleave(n, 0)
                                                 for k, v in self.inputs.items()})

    def cross_attention_site(self, block: int) -> nn.Module:
        """Text layer ``block``'s cross-attention site (one-line error for a layer not there)."""
        sites = self.attention_sites("text_cross")
        if not 0 <= block < len(sites):
            raise ValueError(f"model {self.name!r} has no cross-attention layer {block} "
                             f"(it has {len(sites)} text layers)")
        return sites[block]

    def token_strings(self, text: TextBatch) -> List[List[str]]:
        """Each question's tokens as the text encoder reads them, padding left out: what a
        method's per-token relevance lines up with (the token ids where the model has no
        tokenizer)."""
        tokenizer = getattr(self, "tokenizer", None)
        out = []
        for ids, mask in zip(text.input_ids.cpu(), text.attention_mask.cpu()):
            kept = ids[mask.bool()].tolist()
            out.append(tokenizer.convert_ids_to_tokens(kept) if tokenizer is not None
                       else [str(i) for i in kept])
        return out

    def cross_attention_rows(self, text: TextBatch) -> torch.Tensor:
        """(B, R) weights of the rows of a text→image cross-attention map (the queries of
        :meth:`cross_attention_site`) that stand for the question; methods average the rows
        with them. BLIP: its real question tokens — not ``[ENC]``, not the final ``[SEP]``, not
        padding."""
        mask = text.attention_mask.clone().float()
        mask[:, 0] = 0
        lengths = text.attention_mask.sum(1) - 1
        mask[torch.arange(len(lengths)), lengths] = 0
        return mask

    def itm_logits_from_tokens(self, image_embeds: torch.Tensor, text: TextBatch,
                               image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        return _full(self.match_head(self.text_hidden(image_embeds, text, image_atts)[:, 0]))

    def _text(self, questions: Union[Sequence[str], TextBatch]) -> TextBatch:
        return questions if isinstance(questions, TextBatch) else self.tokenize(questions)

    def itm_logits(self, images: torch.Tensor,
                   questions: Union[Sequence[str], TextBatch]) -> torch.Tensor:
        """(B, 2) ITM logits (no-match, match)."""
        return self.itm_logits_from_tokens(self.visual_tokens(images), self._text(questions))

    def match_probability(self, images: torch.Tensor,
                          questions: Union[Sequence[str], TextBatch]) -> torch.Tensor:
        """(B,) softmax probability of the match class: the score deletion/insertion track."""
        return self.itm_logits(images, questions).softmax(-1)[:, 1]

    def answer_logits(self, images: torch.Tensor, questions: Union[Sequence[str], TextBatch],
                      image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, n_answers) VQA logits; ``image_atts`` (B, 1+N) restricts which patches are read."""
        hidden = self.text_hidden(self.visual_tokens(images), self._text(questions), image_atts)
        return _full(self.answer_head(hidden[:, 0]))

    def greedy_texts(self, images: torch.Tensor, questions: Sequence[str],
                     image_atts: Optional[torch.Tensor] = None) -> List[str]:
        """The answers it writes (:attr:`writes_answers`), reading the ``image_atts`` tokens."""
        raise ValueError(f"model {self.name!r} does not write its answers")

    def predict_answers(self, images: torch.Tensor, questions: Sequence[str]) -> List[str]:
        with torch.no_grad():
            idx = self.answer_logits(images, questions).argmax(-1).tolist()
        return [self.answers[i] for i in idx]


def _full(scores: torch.Tensor) -> torch.Tensor:
    """Scores in fp32 when the passes ran in half precision (``--precision``), else as they
    are (a float64 model keeps float64)."""
    return scores.float() if scores.dtype in (torch.float16, torch.bfloat16) else scores
