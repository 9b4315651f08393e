"""Errors that mean "bad input or usage": the CLI reports them as one line and exits 2."""
from __future__ import annotations


class InputError(ValueError):
    """Bad input (a missing or malformed file, a bad option value): the message says what,
    where and how to fix it."""


class ExcludedSample(InputError):
    """A record that cannot be scored but need not stop the run (an image file that is not
    there, an empty question): the run keeps the question's rows, each with an empty value and
    ``note``, unless no question of the run can be scored."""

    #: why, in a few words (the run's warning counts the exclusions by it)
    reason = "excluded"

    def __init__(self, message: str, sample_id: str, family: str, note: str) -> None:
        super().__init__(message)
        self.sample_id, self.family, self.note = str(sample_id), str(family), note


class MissingImage(ExcludedSample):
    """A record's image file is not there."""

    reason = "image missing"

    def __init__(self, path, sample_id: str, family: str, fix: str) -> None:
        super().__init__(f"missing image {path} (question {sample_id}) — {fix}", sample_id,
                         family, f"excluded: image missing ({path})")
        self.path = str(path)


class EmptyQuestion(ExcludedSample):
    """A record whose question has no words: nothing to explain or answer."""

    reason = "empty question"

    def __init__(self, where: str, sample_id: str, family: str) -> None:
        super().__init__(f"{where}: question {sample_id} is empty — nothing to explain",
                         sample_id, family, "excluded: empty question")
