"""Work drawn beside the main process on a second core: a one-process pool for the few large
independent steps after the units (the forest plots, the paired tests), and a stand-in that
runs the same calls in this process where the work is too small to pay for a process."""
from __future__ import annotations

from concurrent.futures import Future


class Here:
    """An executor that runs what it is given at once, in this process."""

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        future.set_result(fn(*args))
        return future

    def __enter__(self) -> "Here":
        return self

    def __exit__(self, *exc) -> None:
        return None


def beside(parallel: bool):
    """A one-process pool (spawned: no fork of a process holding torch threads) when
    ``parallel``, else :class:`Here`; either is a context manager with ``submit``."""
    if not parallel:
        return Here()
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
