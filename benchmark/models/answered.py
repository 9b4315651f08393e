"""Models explained through an answer they write (generative VLMs, BLIP's VQA decoder), behind
the same protocol as the ITM models.

What is explained is the **answer**: the model's greedy answer to the question on the clean
image (the one a user sees), or a given one (the ``answer`` model option), bound to each sample
as the side input ``"answer"`` (token ids, :data:`NO_TOKEN` after its end) by
:meth:`AnswerExplained.prepared`, which the engine calls before any method or metric reads the
batch. The score is its log-probability, summed over its tokens (end-of-sequence left out; an
empty answer is its end-of-sequence token): ``text_hidden`` carries it in row 0, where an ITM
model's ``[ENC]`` output sits, as a (B, 1, 1) tensor, and ``match_head`` reads it as the two
logits ``(log(1 − p), log p)``. So the ``itm`` target is the answer's log-probability,
``itm_prob`` and the match probability deletion and insertion track are its probability ``p``,
and ``itm_nonmatch`` is ``log(1 − p)``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Dict, List, Optional, Sequence, Tuple

import torch

from benchmark.core.options import Option
from benchmark.models.protocol import VLModel
from benchmark.models.tensors import TextBatch

#: answer ids padding (no token)
NO_TOKEN = -1
#: the options of every adapter explaining an answer (``--model-option hf-llava.answer=yes``)
OPTIONS = (
    Option("answer", str, "", "the answer explained (default: the model's greedy answer)"),
    Option("max_new_tokens", int, 8, "longest greedy answer, in tokens"),
    Option("prompt", str, None, "prompt template with <image> and {question} (default: the "
           "family's VQA prompt)"),
)


@dataclass
class AnswerExplained(VLModel):
    """``tokenizer``; ``fixed_answer``: the answer explained (empty: greedy);
    ``max_new_tokens``: the longest greedy answer. Subclasses provide :meth:`answer_logprob`
    and :meth:`next_logits` on top of the rest of the protocol."""

    tokenizer: Any = None
    fixed_answer: str = ""
    max_new_tokens: int = 8
    #: greedy answers by (question, image bytes), shared by every view of the model: a batch
    #: is answered once however many methods and metrics read it
    answer_memo: Dict[Tuple[str, str], List[int]] = field(default_factory=dict, repr=False,
                                                          compare=False)
    side_inputs = ("answer",)
    prepares = True
    writes_answers = True
    #: token ids greedy decoding never writes
    suppressed: ClassVar[Tuple[int, ...]] = ()

    # ------------------------------------------------------------- for subclasses to provide
    def answer_logprob(self, image_embeds: torch.Tensor, text: TextBatch, answer: torch.Tensor,
                       image_atts: Optional[torch.Tensor]) -> torch.Tensor:
        """(B,) log-probability of each sample's ``answer`` (ids, :data:`NO_TOKEN` padded)."""
        raise NotImplementedError

    def next_logits(self, image_embeds: torch.Tensor, text: TextBatch, answer: torch.Tensor,
                    image_atts: Optional[torch.Tensor]) -> torch.Tensor:
        """(B, V) logits of the token after each sample's ``answer`` so far."""
        raise NotImplementedError

    @property
    def eos_id(self) -> int:
        return self.tokenizer.eos_token_id

    # ------------------------------------------------------------- the protocol
    def text_hidden(self, image_embeds: torch.Tensor, text: TextBatch,
                    image_atts: Optional[torch.Tensor] = None) -> torch.Tensor:
        answer = self.side("answer", image_embeds.shape[0])
        if answer is None:
            raise ValueError(f"model {self.name!r} explains an answer: bind it first "
                             "(model.prepared(images, questions))")
        return self.answer_logprob(image_embeds, text, answer, image_atts)[:, None, None]

    def match_head(self, enc_hidden: torch.Tensor) -> torch.Tensor:
        logp = enc_hidden.reshape(-1)
        return torch.stack([torch.log1p(-logp.exp().clamp(max=1 - 1e-7)), logp], -1)

    def prepared(self, images: torch.Tensor, questions: Sequence[str]) -> "AnswerExplained":
        """This model with each sample's answer bound: the fixed one, else the greedy one."""
        if self.fixed_answer:
            return self.given(answer=self.encode_answers([self.fixed_answer] * len(questions)))
        # an answer that ends at once is explained through its end-of-sequence token (the
        # empty answer's log-probability, 0, would explain nothing)
        rows = self._memoised_greedy(images, questions)
        return self.given(answer=self.padded([r or [self.eos_id] for r in rows]))

    def encode_answers(self, answers: Sequence[str]) -> torch.Tensor:
        """(B, A) token ids of given answers, :data:`NO_TOKEN` padded."""
        return self.padded([self.tokenizer(a, add_special_tokens=False).input_ids
                            for a in answers])

    def padded(self, rows: List[List[int]]) -> torch.Tensor:
        width = max(len(r) for r in rows)
        return torch.tensor([r + [NO_TOKEN] * (width - len(r)) for r in rows],
                            dtype=torch.long, device=self.device)

    def predict_answers(self, images: torch.Tensor, questions: Sequence[str]) -> List[str]:
        """The greedy answers, decoded (whatever :attr:`fixed_answer` explains)."""
        return [self.tokenizer.decode(ids).strip()
                for ids in self._memoised_greedy(images, questions)]

    def _memoised_greedy(self, images: torch.Tensor, questions: Sequence[str]) -> List[List[int]]:
        keys = [(q, hashlib.sha256(x.detach().cpu().numpy().tobytes()).hexdigest())
                for q, x in zip(questions, images)]
        if not all(k in self.answer_memo for k in keys):
            self.answer_memo.update(zip(keys, self.greedy(images, questions)))
        return [self.answer_memo[k] for k in keys]

    def greedy_texts(self, images: torch.Tensor, questions: Sequence[str],
                     image_atts: Optional[torch.Tensor] = None) -> List[str]:
        """The greedy answers, decoded (``image_atts``: the image tokens read, as in
        :meth:`text_hidden`)."""
        return [self.tokenizer.decode(ids).strip()
                for ids in self.greedy(images, questions, image_atts)]

    def greedy(self, images: torch.Tensor, questions: Sequence[str],
               image_atts: Optional[torch.Tensor] = None) -> List[List[int]]:
        """Each sample's greedy answer (token ids, end-of-sequence left out), decoded with the
        same forward the scores read, at most :attr:`max_new_tokens` tokens, the
        :attr:`suppressed` tokens never written (as ``generate(suppress_tokens=...)``)."""
        b, eos = len(questions), self.eos_id
        view, text = self.for_batch(b), self.tokenize(questions)
        answer = torch.empty(b, 0, dtype=torch.long, device=self.device)
        done = torch.zeros(b, dtype=torch.bool, device=self.device)
        with torch.no_grad():
            tokens = view.visual_tokens(images)
            for _ in range(self.max_new_tokens):
                logits = view.next_logits(tokens, text, answer, image_atts)
                logits[:, list(self.suppressed)] = float("-inf")
                nxt = logits.argmax(-1)
                nxt[done] = NO_TOKEN
                answer = torch.cat([answer, nxt[:, None]], 1)
                done |= nxt == eos
                if bool(done.all()):
                    break
        return [[t for t in row if t >= 0 and t != eos] for row in answer.tolist()]


def answer_logprob_of(logits: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """(B,) summed log-probability of ``answer`` (B, A) under ``logits`` (B, A, V), the row
    predicting each of its tokens; :data:`NO_TOKEN` positions add nothing."""
    logp = logits.float().log_softmax(-1)
    picked = logp.gather(-1, answer.clamp(min=0)[..., None])[..., 0]
    return (picked * (answer >= 0)).sum(1)
