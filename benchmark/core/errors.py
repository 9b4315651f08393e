"""Every exception the suite raises on purpose, in one place.

Two kinds: *usage and input* errors (:class:`UsageError`, :class:`InputError` and its
subclasses), which the CLI reports as one line and exit status 2 without losing anything already
computed; and *per-sample* outcomes (:class:`NotApplicable`, :class:`ExcludedSample`), which the
engine records as a row with a note instead of stopping the run.
"""
from __future__ import annotations


class UsageError(Exception):
    """Bad command-line usage: reported as one line, exit status 2."""


class InputError(ValueError):
    """Bad input (a missing or malformed file, a bad option value): the message says what,
    where and how to fix it."""


class UnknownNameError(KeyError):
    """A name that is not registered; its message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly instead
        return str(self.args[0])


class UnknownOption(InputError):
    """An option a plugin does not declare, or a value it cannot take; the message lists the
    valid names."""


class MissingWeights(InputError):
    """A model's weights are not on disk; the message says which file and how to get it."""


class FolderBusy(InputError):
    """Another process is computing into the run folder."""


class WorkerDied(InputError):
    """A worker process ended mid-unit (one line, exit 2; the run resumes)."""


class RepeatedKey(ValueError):
    """A key that appears twice in one JSON object (the file reader turns it into an
    :class:`InputError` naming the file)."""


class NotApplicable(ValueError):
    """A method cannot explain a model, or a metric cannot score it (the engine records the
    reason in the row's note; no crash)."""


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
