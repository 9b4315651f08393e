"""The ``clevrxai`` dataset: CLEVR-XAI's questions and ground-truth relevance masks (Arras, Osman
& Samek, "CLEVR-XAI: A benchmark dataset for the ground truth evaluation of neural network
explanations", Information Fusion 2022).

``data_root`` holds the release unchanged:

- ``CLEVR-XAI_simple_questions.json`` and ``CLEVR-XAI_complex_questions.json`` (``{"info",
  "questions": [...]}``; per question ``question_index``, ``image_filename``, ``question``,
  ``answer`` — a string, number or boolean as CLEVR's engine returns it — and
  ``template_filename`` / ``question_family_index``);
- ``images/CLEVR_unique_%06d.png`` (480 × 320, RGBA);
- ``ground_truth_<split>_questions_<type>/<question_index>.npy``: one boolean mask per question
  and type. Simple questions have ``single_object`` and ``all_objects``; complex ones
  ``unique``, ``unique_firstnonempty``, ``union`` and ``all_objects``. The release leaves out
  the masks that are undefined (e.g. no unique object), and stores them at the resolution its
  models read (128 × 128), not the image's.

``split`` is ``simple`` (default) or ``complex``; ``region`` picks the mask type of
``target_mask`` (default ``single_object`` / ``unique``), and ``all_objects`` is the evidence.
A mask stored at another resolution than the image's is resized to it by nearest neighbour (the
mask covers the whole image either way). A question without its mask file has an empty target
and is excluded from the localisation metrics (its rows say so). CLEVR-XAI's masks name no
other objects, so there is no distractor or size-matched control: those rows are noted.
Answers: booleans become ``yes``/``no``, numbers their digits; scored by exact match. Families
are the question templates (``template_filename`` without ``.json``, else the family index).
Relevance mass and rank accuracy on these masks are ``relevance_mass`` and ``relevance_rank``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from benchmark.core.errors import InputError, MissingImage
from datasets import register
from datasets.base import (Dataset, Record, answer_text, check_question_type, decode_rgb,
                           question_text)
from datasets.files import data_root as root_folder
from datasets.files import by_id, list_of, read_json

RELEASE = "CLEVR-XAI"
#: split → its mask types, the default first
REGIONS = {"simple": ("single_object", "all_objects"),
           "complex": ("unique", "unique_firstnonempty", "union", "all_objects")}


@register("clevrxai")
class ClevrXaiDataset(Dataset):
    """CLEVR-XAI questions with their ground-truth masks (see the module docstring)."""

    name = "clevrxai"
    exact_match = True

    def __init__(self, data_root: Optional[str] = None, split: str = "simple",
                 region: Optional[str] = None, seed: int = 0, **_: object) -> None:
        if split not in REGIONS:
            raise InputError(f"unknown split {split!r} for clevrxai; use simple or complex")
        region = region or REGIONS[split][0]
        if region not in REGIONS[split]:
            raise InputError(f"--region {region} is not a mask type of CLEVR-XAI's {split} "
                             f"questions; use one of {', '.join(REGIONS[split])}")
        self.split, self.region, self.seed = split, region, seed
        qname = f"CLEVR-XAI_{split}_questions.json"
        self.data_root = root = root_folder(
            data_root, self.name, f"{qname}, images/ and ground_truth_{split}_questions_<type>/")
        self._qpath = root / qname
        questions = list_of(read_json(self._qpath, "CLEVR-XAI questions"), "questions",
                            self._qpath, ("question_index", "image_filename", "question",
                                          "answer"), "question", RELEASE)
        self._questions = sorted(by_id(questions, "question_index", self._qpath,
                                       "question").values(), key=lambda q: q["question_index"])
        for q in self._questions:
            check_question_type(q["question"], str(self._qpath), str(q["question_index"]))
            answer_text(q["answer"], f"{self._qpath}: question {q['question_index']}")
        self.image_dir = root / "images"
        for kind in {region, "all_objects"}:
            folder = self.mask_dir(kind)
            if not folder.is_dir():
                raise InputError(f"missing folder {folder} — unpack CLEVR-XAI's ground truth "
                                 "into --data-root")

    def mask_dir(self, kind: str) -> Path:
        return self.data_root / f"ground_truth_{self.split}_questions_{kind}"

    def __len__(self) -> int:
        return len(self._questions)

    def _mask(self, kind: str, q: dict, shape) -> np.ndarray:
        path = self.mask_dir(kind) / f"{q['question_index']}.npy"
        if not path.is_file():  # undefined for this question: the release leaves it out
            return np.zeros(shape, bool)
        try:
            m = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read mask {path} (question {q['question_index']}): {e} — "
                             "re-download it") from None
        if m.ndim != 2 or 0 in m.shape:
            raise InputError(f"mask {path} (question {q['question_index']}) has shape "
                             f"{m.shape}, expected (H, W) — re-download it")
        m = m > 0
        if m.shape != tuple(shape):  # stored at the models' input size: nearest, whole image
            rows = np.arange(shape[0]) * m.shape[0] // shape[0]
            cols = np.arange(shape[1]) * m.shape[1] // shape[1]
            m = m[rows][:, cols]
        return m

    def __getitem__(self, i: int) -> Record:
        if not 0 <= i < len(self):
            raise IndexError(i)
        q = self._questions[i]
        sid = str(q["question_index"])
        template = str(q.get("template_filename", ""))
        family = template[:-5] if template.endswith(".json") else \
            (template or str(q.get("question_family_index", "")))
        path = self.image_dir / str(q["image_filename"])
        if not path.is_file():
            raise MissingImage(path, sid, family, f"put CLEVR-XAI's images in {self.image_dir}")
        question = question_text(q["question"], str(self._qpath), sid, family)
        answer = answer_text(q["answer"], f"{self._qpath}: question {sid}")
        image = decode_rgb(path, f"question {sid}")
        shape = image.shape[:2]
        target = self._mask(self.region, q, shape)
        evidence = target | self._mask("all_objects", q, shape)
        empty = np.zeros(shape, bool)
        return Record(sample_id=sid, image=image, question=question,
                      answers=[answer], family=family, target_mask=target,
                      distractor_mask=empty, evidence_mask=evidence,
                      extra={"image_filename": str(q["image_filename"]), "region": self.region,
                             "question_family_index": q.get("question_family_index")})

    def describe(self) -> dict:
        return {"name": self.name, "split": self.split, "region": self.region,
                "data_root": str(self.data_root), "n": len(self)}
