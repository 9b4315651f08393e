"""``--workers N``: a run's units computed by N local processes of one torch thread each.

The units are pure functions of the configuration (:mod:`benchmark.engine.units`,
:mod:`benchmark.engine.unit_rows`, :mod:`benchmark.engine.sanity_run`): per model, one task computes what its
units read (manifest entry, answers, Δ per object) into the run folder's cache; then every
(model, method, batch) unit and (model, method) sanity unit is a task. Workers read the dataset
and the cached model state themselves and load each model once; the driver writes each result
into the cache as it arrives (atomic), and the local runner then merges the cache exactly as
after any engine. A unit's numbers depend on the number of torch threads that summed them (in
the last bits), so a run folder keeps the thread count of its units (``cache/threads``): one
computed by workers resumes with workers, one computed in-process resumes in-process.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from benchmark.engine.cache import UnitCache
from benchmark.engine.config import RunConfig
from benchmark.core.errors import WorkerDied
from benchmark.engine.progress import RunProgress
from benchmark.engine.run_data import RunData, load_run_data, unit_key
from benchmark.engine.meta_run import meta_weight
from benchmark.engine.sanity_run import sanity_names, sanity_unit, sanity_weight

#: what one worker process keeps between tasks: the run's data and its loaded model states
_WORKER: Dict[str, object] = {}


def _init(cfg: RunConfig, out: str) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(cfg=cfg, out=out, data=None, states={})


def _data() -> RunData:
    if _WORKER["data"] is None:
        _WORKER["data"] = load_run_data(_WORKER["cfg"])
    return _WORKER["data"]


def _state(name: str):
    from benchmark.engine.units import model_state

    states = _WORKER["states"]
    if name not in states:
        data = _data()
        cache = UnitCache(Path(_WORKER["out"]), data.cfg.digest(), data.cfg.device)
        states[name] = model_state(name, data, cache)
    return states[name]


def _task(kind: str, name: str, method: Optional[str], b: Optional[int]) -> List[tuple]:
    """[(cache parts, value)] of one task: a model's state, a unit or a sanity unit."""
    import time

    from benchmark.engine.unit_rows import compute_unit

    if kind == "state":
        _state(name)  # computes and caches its entries
        return []
    if kind == "unit":
        return [((name, method, unit_key(b)), compute_unit(_state(name), _data(), method, b))]
    t0 = time.perf_counter()
    tests = sanity_unit(_state(name).model, method, _data())
    return [((name, method, "sanity"), tests),
            ((name, method, "sanity-seconds"), time.perf_counter() - t0)]


def _jobs(data: RunData, cache: UnitCache, name: str) -> List[Tuple]:
    cfg = data.cfg
    jobs = [("unit", name, m, b) for m in cfg.methods for b in range(len(data.batches))
            if not cache.has(name, m, unit_key(b))]
    info = cache.get(name, "info") or {}
    if sanity_names(cfg) and not info.get("untrained"):
        jobs += [("sanity", name, m, None) for m in cfg.methods if not cache.has(name, m, "sanity")]
    return jobs


def compute_in_processes(cfg: RunConfig, out: Path, workers: int, progress: bool = True) -> None:
    """Compute every unit of ``cfg`` missing from ``out``'s cache in ``workers`` processes."""
    from benchmark.engine.units import missing_models

    data = load_run_data(cfg)
    cache = UnitCache(out, data.cfg.digest(), cfg.device, data.dataset_info["fingerprint"],
                      data.cfg.pipeline_fingerprint(), threads=1)
    names = [m for m, why in missing_models(cfg).items() if not why]
    weight = {m: sanity_weight(data, m) for m in cfg.methods}

    def size(job) -> int:
        kind, name, method, b = job
        return data.maps_in(method, b) if kind == "unit" else weight[method] if kind == "sanity" \
            else meta_weight(data, name)  # a model's state: its meta-evaluation's maps

    total = len(names) * sum(data.maps_in(m, b) for m in cfg.methods
                             for b in range(len(data.batches))) + len(names) * sum(
        weight.values()) + sum(meta_weight(data, n) for n in names)
    done = sum(data.maps_in(m, b) for n in names for m in cfg.methods
               for b in range(len(data.batches)) if cache.has(n, m, unit_key(b))) + sum(
        weight[m] for n in names for m in cfg.methods if cache.has(n, m, "sanity"))
    # the workers import LAVIS afresh: keep its deprecation warnings off the user's terminal,
    # as this process does
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning,ignore::UserWarning")
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init,
                               initargs=(data.cfg, str(out)))
    try:
        with RunProgress(total, done, enabled=progress) as bars:
            _drain(pool, data, cache, names, weight, size, bars)
    except BrokenProcessPool:
        raise WorkerDied("a worker process ended before its unit was done (killed, or out of "
                         "memory: try --workers 1 or --max-batch-images); results computed so "
                         "far are kept: run the same command to resume") from None
    except KeyboardInterrupt:
        # the workers are mid-unit and would otherwise be waited for; nothing they hold is
        # lost (a unit is written only when it is whole)
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _drain(pool, data: RunData, cache: UnitCache, names: List[str], weight: Dict[str, int],
           size, bars) -> None:
    """Submit each model's state, then its units once the state is cached; write every result
    into the cache as it arrives."""
    pending = {pool.submit(_task, "state", n, None, None): ("state", n, None, None)
               for n in names}
    while pending:
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            job = pending.pop(future)
            for parts, value in future.result():
                cache.put(value, *parts)
            bars.advance(size(job), True)
            if job[0] == "state":
                if (cache.get(job[1], "info") or {}).get("untrained"):
                    bars.shrink(sum(weight.values()))  # no sanity checks to run
                pending.update({pool.submit(_task, *j): j for j in _jobs(data, cache, job[1])})
