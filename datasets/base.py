"""What every dataset yields: records with an image, a question, answers and regions."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from benchmark.core.errors import EmptyQuestion, InputError
from benchmark.core.options import Option


@dataclass
class Record:
    """One question about one image.

    ``target_mask`` is the ground-truth region (empty when undeterminable: the sample is then
    excluded from localisation metrics); ``evidence_mask`` every object the answer depends on
    (e.g. both objects of "is the red circle left of the blue square?"); ``distractor_mask`` is a same-image object the question is
    not about (grounding control; may be empty); ``control_mask`` as many non-target objects as
    the target has, of matched sizes (the size-matched control); ``semantic_map`` feeds fused
    models.
    """

    sample_id: str
    image: np.ndarray  # (H, W, 3) uint8
    question: str
    answers: List[str]
    family: str
    target_mask: np.ndarray
    distractor_mask: np.ndarray
    semantic_map: Optional[np.ndarray] = None
    evidence_mask: Optional[np.ndarray] = None  # every object the answer depends on (≥ target)
    extra: dict = field(default_factory=dict)
    #: size-matched grounding control (:mod:`datasets.control`); empty when there is none
    control_mask: Optional[np.ndarray] = None

    @property
    def control(self) -> np.ndarray:
        """The size-matched control region, or an empty mask where a dataset gives none."""
        return np.zeros_like(self.target_mask) if self.control_mask is None else self.control_mask

    @property
    def evidence(self) -> np.ndarray:
        """The evidence region, or the target region where a dataset does not give one."""
        return self.target_mask if self.evidence_mask is None else self.evidence_mask

    @property
    def answer(self) -> str:
        """The most common human answer (ties: first seen)."""
        return max(self.answers, key=self.answers.count) if self.answers else ""


class Dataset:
    """A sized, indexable collection of :class:`Record` (subclasses implement ``_load``)."""

    name = "dataset"
    exact_match = True  # synthetic / GQA: exact match; VQA-style data: official VQA accuracy
    #: insertion metric's starting image when the run does not choose one: RISE's blur, unless
    #: the data's evidence survives that blur (then the curve is flat for every method)
    insertion_start = "blur"
    #: the pointing game's tolerance when the run does not set one: TorchRay's 15 px at the
    #: images' native resolution (masks are kept at native resolution)
    pointing_tolerance_px = 15.0
    #: what the dataset gives per sample besides its regions, in ``Record.extra`` (e.g. GQA's
    #: grounding boxes, human attention maps): the reference metrics that read them apply
    references: tuple = ()
    #: settings a user may pass (``--dataset-option OPTION=VALUE``): each an
    #: :class:`~benchmark.core.options.Option`, handed to the constructor as a keyword argument
    options: Tuple[Option, ...] = ()

    def pointing_tolerance(self, image_side: int) -> float:
        """The default pointing tolerance in pixels for images of this side."""
        return self.pointing_tolerance_px

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, i: int) -> Record:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name, "n": len(self)}

    def missing_images(self) -> List[Tuple[str, Path]]:
        """(sample id, image path) of every sample whose image file is absent, found without
        decoding any image; none for generated data."""
        return []

    def reference_rows(self, records: Sequence[Record]) -> List[dict]:
        """Result rows of a reference the dataset itself gives for ``records`` (e.g. the
        agreement between human annotators), beside the models' rows; none by default."""
        return []

    def fingerprint(self, records: Optional[Sequence[Record]] = None,
                    missing: Sequence[str] = ()) -> str:
        """sha256 over every record's id, question, answers, image and masks, and the ids of the
        samples whose image is ``missing``."""
        h = hashlib.sha256()
        for sid in missing:
            h.update(f"missing:{sid}".encode())
        for r in (records if records is not None else (self[i] for i in range(len(self)))):
            for part in (r.sample_id, r.question, "|".join(r.answers)):
                h.update(part.encode())
            for arr in (r.image, r.target_mask, r.distractor_mask):
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()


#: PIL modes of one channel wider than 8 bits (16-bit PNG, 32-bit integer), scaled to 8 bits
WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def decode_rgb(path: Path, record: str) -> np.ndarray:
    """The image file at ``path`` as (H, W, 3) uint8 RGB, whatever its mode (grayscale, CMYK,
    palette, RGBA, 16-bit): the pixel array as stored, without EXIF rotation, as COCO's
    annotations are drawn on it. A 16-bit image is scaled to 8 bits (÷ 257), not clipped. A
    file that does not decode is an :class:`InputError` naming ``record``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode in WIDE_MODES:
                wide = np.asarray(im, dtype=np.float64)
                gray = np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=2)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except Image.DecompressionBombError as e:
        raise InputError(f"image {path} ({record}) is too large to decode safely ({e}) — "
                         "downscale it, or raise PIL.Image.MAX_IMAGE_PIXELS") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"corrupt image {path} ({record}): {e} — re-download or replace "
                         "it") from None


def answer_text(value, where: str) -> str:
    """An annotated answer as the text the scorers read: a string as it is, a boolean yes/no
    (CLEVR's engine writes them), an integer its digits. Anything else (a list, an object,
    null, a fraction) names ``where`` in an :class:`InputError`: read as text it would score
    silently wrong."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return str(int(value))
    raise InputError(f"{where}: answer {value!r} is a {type(value).__name__}, expected a string "
                     "— re-download or regenerate the file")


def check_question_type(value, where: str, sample_id: str) -> None:
    """An :class:`InputError` naming ``where`` when a question is not a string."""
    if not isinstance(value, str):
        raise InputError(f"{where}: question {sample_id} is a {type(value).__name__}, expected a "
                         "string — re-download or regenerate the file")


def question_text(value, where: str, sample_id: str, family: str) -> str:
    """A question as text (:func:`check_question_type`); :class:`EmptyQuestion` (the sample's
    rows are kept, noted) when it has no words."""
    check_question_type(value, where, sample_id)
    if not value.strip():
        raise EmptyQuestion(where, sample_id, family)
    return value
