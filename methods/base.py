"""The shape every attribution method shares, and the pieces they reuse."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from benchmark.core.errors import NotApplicable
from benchmark.core.options import Configurable, Option
from benchmark.models.protocol import VLModel
from benchmark.models.tensors import TextBatch
from methods.targets import check_target, parse_target


#: what the engine can hand a method besides the images and questions; a method receives only
#: the ones it lists in ``needs`` (ground truth never reaches a method that does not ask for it)
INPUTS = {
    "seed": "an int seed per batch (same run seed and batch → same value)",
    "masks": "the ground-truth target masks, one (H, W) bool array per image",
    "evidence_masks": "the ground-truth evidence masks (every object the answer depends on)",
    "counterfactuals": "per image, its objects' masks and effects Δ_o (re-renderable data)",
}
#: inputs that reveal the answer key: a method needing one is a bracket, not a method to rank
#: or to sanity-check
GROUND_TRUTH = ("masks", "evidence_masks", "counterfactuals")


@dataclass
class Diagnostic:
    """A per-sample quantity a method reports about its own maps (e.g. IG's completeness gap),
    with its direction; the engine writes each as a metric row."""

    values: torch.Tensor  # (B,)
    higher_is_better: bool


@dataclass
class Explanation:
    """What :meth:`Attribution.explain` returns: the maps, the method's diagnostics, and which
    maps are valid (``valid[i]`` False: the estimator did not converge; the engine keeps the
    row with a note and leaves it out of every mean)."""

    maps: torch.Tensor  # (B, gh, gw) float32, CPU
    diagnostics: Dict[str, Diagnostic] = field(default_factory=dict)
    valid: Optional[torch.Tensor] = None  # (B,) bool
    #: (B, L) float32: relevance of each position of ``model.tokenize(questions)``, NaN where
    #: a position is not a question token (``[ENC]``, ``[SEP]``, padding); from the methods
    #: that give one (the engine writes tokens.csv)
    tokens: Optional[torch.Tensor] = None


def _rows(value: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a per-sample input (a sequence or tensor); a scalar as it is."""
    return value[start:stop] if isinstance(value, (list, tuple, torch.Tensor)) else value


def _concatenated(parts: Sequence[Explanation]) -> Explanation:
    """One :class:`Explanation` of the slices ``parts`` of a batch, in order."""
    diagnostics = {k: Diagnostic(torch.cat([p.diagnostics[k].values for p in parts]),
                                 d.higher_is_better) for k, d in parts[0].diagnostics.items()}
    valid = None if parts[0].valid is None else torch.cat([p.valid for p in parts])
    tokens = None
    if all(p.tokens is not None for p in parts):  # tokenised apart: pad to the longest, NaN
        width = max(p.tokens.shape[1] for p in parts)
        tokens = torch.cat([F.pad(p.tokens, (0, width - p.tokens.shape[1]), value=float("nan"))
                            for p in parts])
    return Explanation(torch.cat([p.maps for p in parts]), diagnostics, valid, tokens)


class Attribution(Configurable):
    """Base class of every method. Subclasses declare their options as class attributes
    (``n_steps = Option(...)``; on an instance, ``self.n_steps`` is the bound value), the run
    ``needs`` they read (names of :data:`INPUTS`) and
    whether they are a baseline (``is_baseline``: never reported as the best method), and
    implement :meth:`attribute`, which returns the maps or an :class:`Explanation`.

    ``name`` is set by ``methods.register``; ``sanity_options`` (option → value) are applied
    when the sanity checks explain a randomised model. A method whose map of a sample depends
    on that sample alone sets ``per_sample = True``: a batch larger than the model's
    ``max_batch_images`` is then explained in slices of that size (a method that reads the
    batch — a seed per batch, references from other samples — is always called whole and
    bounds its own passes).
    """

    family = "method"
    needs: Tuple[str, ...] = ()
    is_baseline: bool = False
    #: added after the analysis was fixed (``ANALYSIS.md``): tested, uncorrected, never ranked
    exploratory: bool = False
    per_sample: bool = False
    sanity_options: Dict[str, Any] = {}

    @property
    def reads_ground_truth(self) -> bool:
        """A bracket: its map reads the answer key (never ranked, tested or sanity-checked)."""
        return any(n in GROUND_TRUTH for n in self.needs)

    @property
    def role(self) -> str:
        """``method`` (ranked and tested), ``baseline`` (a reference every method must beat:
        set apart, compared with but never in a family of tests), ``exploratory`` (a method
        the analysis did not name: tested against the others, uncorrected, never ranked) or
        ``bracket`` (reads the answer key: a reference row, never tested)."""
        return "bracket" if self.reads_ground_truth else \
            "baseline" if self.is_baseline else \
            "exploratory" if self.exploratory else "method"

    def applicable(self, model: VLModel) -> Optional[str]:
        """``None`` when the method can explain ``model``, else the reason it cannot."""
        return None

    def attribute(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                  **inputs: Any) -> Union[torch.Tensor, Explanation]:
        raise NotImplementedError

    def explain(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                **inputs: Any) -> Explanation:
        """Validated :class:`Explanation`; ``inputs`` not in ``needs`` are dropped."""
        reason = self.applicable(model)
        if reason:
            raise NotApplicable(f"{self.name} does not apply to {model.name}: {reason}")
        inputs = {k: v for k, v in inputs.items() if k in self.needs}
        b = images.shape[0]
        size = model.images_per_forward(b) if self.per_sample else b
        parts = [self._explain_slice(model.select(slice(s, s + size)), images[s:s + size],
                                     questions[s:s + size],
                                     {k: _rows(v, s, s + size) for k, v in inputs.items()})
                 for s in range(0, b, size)]
        return parts[0] if len(parts) == 1 else _concatenated(parts)

    def _explain_slice(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                       inputs: Dict[str, Any]) -> Explanation:
        out = self.attribute(model, images, questions, **inputs)
        out = out if isinstance(out, Explanation) else Explanation(out)
        gh, gw = model.grid
        if tuple(out.maps.shape) != (images.shape[0], gh, gw):
            raise RuntimeError(f"method {self.name!r} returned shape {tuple(out.maps.shape)}, "
                               f"expected {(images.shape[0], gh, gw)}")
        out.maps = out.maps.detach().float().cpu()
        if out.tokens is not None:
            out.tokens = out.tokens.detach().float().cpu()
        return out

    def __call__(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                 **kwargs: Any) -> torch.Tensor:
        """The maps (B, gh, gw); ``kwargs`` are inputs (``seed=``, ``masks=`` …) or options
        for this call only (``n_steps=64``)."""
        return self.explain_with(model, images, questions, **kwargs).maps

    def explain_with(self, model: VLModel, images: torch.Tensor, questions: Sequence[str],
                     **kwargs: Any) -> Explanation:
        """:meth:`explain` with ``kwargs`` split into inputs and per-call options."""
        options = {k: v for k, v in kwargs.items() if k not in INPUTS}
        inputs = {k: v for k, v in kwargs.items() if k in INPUTS}
        method = self.with_options(**options) if options else self
        return method.explain(model, images, questions, **inputs)


#: the score a gradient method explains (a name of :mod:`methods.targets`)
TARGET = Option("target", str, "itm", "score explained: itm (match logit), itm_prob (match "
                "probability), itm_nonmatch (the no-match logit), answer (the predicted answer's "
                "logit) or answer:WORD", validate=check_target)
#: the text layer whose cross-attention a method reads
BLOCK = Option("block", int, None, "cross-attention layer read (default: the model's Grad-CAM "
               "block, PNP-VQA's 7 of 12)")


def target_score(model: VLModel, image_embeds: torch.Tensor, text: TextBatch,
                 target: str = "itm") -> torch.Tensor:
    """(B,) scalar explained per sample from the visual tokens: the target named ``target``
    (:mod:`methods.targets`) of the text encoder's ``[ENC]`` output."""
    explained = parse_target(target)
    model = explained.bind(model)
    return explained(model, model.text_hidden(image_embeds, text)[:, 0])


def question_tokens(per_row: torch.Tensor, model: VLModel, text: TextBatch
                    ) -> Optional[torch.Tensor]:
    """(B, L) one value per text row → :attr:`Explanation.tokens` (NaN off the question rows),
    or ``None`` when the rows are not the question's tokens (BLIP-2's are its queries)."""
    if not model.rows_are_tokens:
        return None
    rows = model.cross_attention_rows(text).to(per_row.device)
    if not per_row.shape == rows.shape == text.input_ids.shape:
        return None
    return torch.where(rows > 0, per_row, torch.full_like(per_row, float("nan")))


def question_mean(per_row: torch.Tensor, model: VLModel, text: TextBatch) -> torch.Tensor:
    """(B, L, K) values per text row → (B, K), their mean over the rows that stand for the
    question (``VLModel.cross_attention_rows``)."""
    rows = model.cross_attention_rows(text)
    return (per_row * rows[..., None]).sum(1) / rows.sum(1, keepdim=True).clamp(min=1)


def to_grid(patch_values: torch.Tensor, grid: tuple) -> torch.Tensor:
    """(B, gh·gw) → (B, gh, gw)."""
    return patch_values.reshape(patch_values.shape[0], *grid)
