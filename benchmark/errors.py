"""Errors that mean "bad input or usage": the CLI reports them as one line and exits 2."""
from __future__ import annotations


class InputError(ValueError):
    """Bad input (a missing or malformed file, a bad option value): the message says what,
    where and how to fix it."""
