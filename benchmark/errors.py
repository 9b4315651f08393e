"""Errors that mean "bad input or usage": the CLI reports them as one line and exits 2."""
from __future__ import annotations


class InputError(ValueError):
    """Bad input (a missing or malformed file, a bad option value): the message says what,
    where and how to fix it."""


class MissingImage(InputError):
    """A record's image file is not there: the run keeps the question's rows, each with an
    empty value and a note, unless every image of the run is missing."""

    def __init__(self, path, sample_id: str, family: str, fix: str) -> None:
        super().__init__(f"missing image {path} (question {sample_id}) — {fix}")
        self.path, self.sample_id, self.family = str(path), str(sample_id), str(family)
