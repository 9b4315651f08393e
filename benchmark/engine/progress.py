"""Progress of a run on stderr: one overall bar with an ETA for every (model, method, batch)
unit of the run, and under it one bar for the unit being computed.

The overall bar counts heatmaps: one per model × method × question, and for each (model,
method) sanity unit the maps its tests compute (:func:`benchmark.engine.sanity_run.sanity_weight`, an
estimate from the embedded models' stage count; a model found untrained, whose sanity checks do
not run, takes its share out of the total when it loads). Units already in the
cache count as done from the start, so after a resume the rate — and hence the ETA — comes
from the work this process actually does. The ETA is that average rate applied to what is left
(``smoothing=0``); methods differ in cost by orders of magnitude (Integrated Gradients against a
single backward pass), so it is an estimate that firms up as the run passes through them.
Used as a context manager, the bars are closed however the run ends.
"""
from __future__ import annotations

import sys
from typing import Optional


class RunProgress:
    """Overall bar plus per-unit bars (both silent when ``enabled`` is false)."""

    def __init__(self, total: int, done: int = 0, enabled: bool = True) -> None:
        from tqdm import tqdm

        self._tqdm = tqdm
        self.enabled = enabled
        self.overall = tqdm(total=total, initial=done, disable=not enabled, unit="map",
                            desc="run", position=0, smoothing=0, file=sys.stderr,
                            dynamic_ncols=True)
        self._unit: Optional[object] = None

    def unit(self, desc: str, total: int, unit: str = "q"):
        """Start the bar of one pass (``total`` questions, or other ``unit``s); returns it."""
        self.close_unit()
        self._unit = self._tqdm(total=total, disable=not self.enabled, unit=unit, desc=desc,
                                position=1, leave=False, file=sys.stderr, dynamic_ncols=True)
        return self._unit

    def advance(self, maps: int, computed: bool, steps: Optional[int] = None) -> None:
        """``maps`` heatmaps finished: computed now, or read from the cache (already counted);
        the unit's bar moves by ``steps`` (default: ``maps``)."""
        if computed:
            self.overall.update(maps)
        if self._unit is not None:
            self._unit.update(maps if steps is None else steps)

    def shrink(self, maps: int) -> None:
        """Take ``maps`` that will not be computed out of the overall total."""
        if maps:
            self.overall.total -= maps
            self.overall.refresh()

    def close_unit(self) -> None:
        if self._unit is not None:
            self._unit.close()
            self._unit = None

    def close(self) -> None:
        self.close_unit()
        self.overall.close()

    def __enter__(self) -> "RunProgress":
        return self

    def __exit__(self, *exc) -> None:
        # closed before an error or interruption propagates, so that its one-line message
        # starts a line of its own and no bar is redrawn after it
        self.close()
