"""``--engine ray``: a run's units (:mod:`benchmark.engine.units`) computed as Ray tasks.

How the units map to Ray:

1. per model, one task computes what every unit of that model reads — its manifest entry, its
   answers and its Δ per object (:class:`benchmark.engine.units.ModelState`) — from the entries the run
   folder already holds; the driver puts them in Ray's object store once per model;
2. per model, a pool of actors (``actors_per_model``; one GPU each when the cluster has GPUs)
   loads the model once and computes the (model, method, batch) units and then the (model,
   method) sanity units, in any order;
3. the driver puts every result into the run folder's unit cache as it arrives (atomic writes),
   so a run killed at any point resumes — with either engine — and
4. merges the cache exactly as a local run does (:func:`benchmark.engine.runner.run`, which then finds
   every unit cached and loads no model), hence byte-identical CSVs.

Actors are restarted when their worker dies and their tasks retried (``max_restarts`` and
``max_task_retries`` unlimited): a unit is a pure function of the configuration, so a retried
unit gives the same bytes. Workers read the dataset themselves (``--data-root`` must be
reachable from them) and use as many torch threads as the driver, so that their kernels sum in
the same order as a local run's.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Callable, Dict, List, Optional

from benchmark.engine.cache import MemoryCache, UnitCache
from benchmark.engine.config import RunConfig
from benchmark.engine.progress import RunProgress
from benchmark.engine.sanity_run import sanity_names, sanity_unit, sanity_weight
from benchmark.engine.run_data import load_run_data, unit_key
from benchmark.engine.unit_rows import compute_unit
from benchmark.engine.units import missing_models, model_state


class ModelWorker:
    """One model of the run, loaded once, computing its units (a Ray actor's class).

    Each call carries the model's state entries as ``[ObjectRef]`` (a nested reference, which
    Ray neither resolves nor lets go while the call may be retried): a restarted actor rebuilds
    its state from the first call it is given, and no call copies the entries again."""

    def __init__(self, cfg: RunConfig, name: str, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.name, self.data, self.state = name, load_run_data(cfg), None

    def _state(self, entries: list):
        if self.state is None:
            import ray

            self.state = model_state(self.name, self.data, MemoryCache(ray.get(entries[0])))
        return self.state

    def unit(self, method: str, b: int, entries: list) -> List[tuple]:
        """[(cache parts, value)] of batch ``b`` of ``method``."""
        return [((self.name, method, unit_key(b)),
                 compute_unit(self._state(entries), self.data, method, b))]

    def sanity(self, method: str, entries: list) -> List[tuple]:
        """[(cache parts, value)]: the sanity unit of ``method`` and its time."""
        t0 = time.perf_counter()
        tests = sanity_unit(self._state(entries).model, method, self.data)
        return [((self.name, method, "sanity"), tests),
                ((self.name, method, "sanity-seconds"), time.perf_counter() - t0)]

    def pid(self) -> int:
        return os.getpid()


def _prepare(cfg: RunConfig, name: str, entries: dict, threads: int) -> dict:
    """The model's state entries that ``entries`` lacks, computed (a Ray task)."""
    import torch

    torch.set_num_threads(threads)
    cache = MemoryCache(entries)
    model_state(name, load_run_data(cfg), cache)
    return cache.new


def _state_entries(cache: UnitCache, name: str, n_batches: int) -> dict:
    keys = [(name, "info"), (name, "predictions")] + [(name, "effects", unit_key(b))
                                                      for b in range(n_batches)]
    return {k: cache.get(*k) for k in keys if cache.has(*k)}


def _jobs(cfg: RunConfig, cache: UnitCache, names: List[str], n_batches: int) -> Dict[str, list]:
    """Per model, the ``(kind, method, batch)`` jobs its cache lacks: units, then sanity units
    (trained models only)."""
    sanity = bool(sanity_names(cfg))
    todo: Dict[str, list] = {}
    for name in names:
        todo[name] = [("unit", m, b) for m in cfg.methods for b in range(n_batches)
                      if not cache.has(name, m, unit_key(b))]
        if sanity and not cache.get(name, "info").get("untrained"):
            todo[name] += [("sanity", m, None) for m in cfg.methods
                           if not cache.has(name, m, "sanity")]
    return todo


def _progress(cfg: RunConfig, data, cache: UnitCache, names: List[str],
              todo: Dict[str, list], enabled: bool) -> tuple:
    """The run's bar (in maps, the done ones already counted) and a job's weight in maps."""
    weight = {m: sanity_weight(data, m) for m in cfg.methods}

    def maps(kind: str, method: str, b: Optional[int]) -> int:
        return data.maps_in(method, b) if kind == "unit" else weight[method]

    n_batches = len(data.batches)
    total = len(names) * sum(maps("unit", m, b) for m in cfg.methods
                             for b in range(n_batches)) + sum(
        sum(weight.values()) for name in names if not cache.get(name, "info").get("untrained"))
    done = total - sum(maps(*job) for jobs in todo.values() for job in jobs)
    return RunProgress(total, done, enabled=enabled), maps


def _dispatch(actors: Dict[str, list], todo: Dict[str, list], entries: Dict[str, list],
              cache: UnitCache, advance: Callable[[tuple], None],
              on_result: Callable[[Dict[str, list]], None]) -> None:
    """Run every job on its model's actors, one job per actor at a time (a dead actor's job is
    retried on its restarted self), caching each result as it arrives; an actor with nothing
    left is ended, which frees its CPU (or GPU) for the actors of models still to be placed."""
    import ray

    queues = {name: deque(jobs) for name, jobs in todo.items()}
    inflight: Dict[object, tuple] = {}

    def launch(name: str, actor) -> None:
        if not queues[name]:
            ray.kill(actor)
            return
        kind, method, b = job = queues[name].popleft()
        ref = (actor.unit.remote(method, b, entries[name]) if kind == "unit"
               else actor.sanity.remote(method, entries[name]))
        inflight[ref] = (name, actor, job)

    for name, handles in actors.items():
        for a in handles:
            launch(name, a)
    while inflight:
        (ref,), _ = ray.wait(list(inflight), num_returns=1)
        name, actor, job = inflight.pop(ref)
        for parts, value in reversed(ray.get(ref)):  # the unit itself last
            cache.put(value, *parts)
        advance(job)
        on_result(actors)
        launch(name, actor)


def compute_on_ray(cfg: RunConfig, out: Path, address: Optional[str] = None,
                   actors_per_model: Optional[int] = None, progress: bool = True,
                   on_result: Callable[[Dict[str, list]], None] = lambda actors: None) -> None:
    """Compute every unit of ``cfg`` missing from ``out``'s cache on the Ray cluster at
    ``address`` (a local one when ``None``). ``on_result(actors)`` is called after each result
    is cached, with each model's actor handles."""
    import ray
    import torch

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)  # the run's own errors are one line
    threads = torch.get_num_threads()
    gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 and cfg.device == "cuda" else 0
    data = load_run_data(cfg)
    # the digest of the filled-in config
    cache = UnitCache(out, data.cfg.digest(), cfg.device, data.dataset_info["fingerprint"],
                      data.cfg.pipeline_fingerprint(), threads)
    names = [m for m, why in missing_models(cfg).items() if not why]
    n_batches = len(data.batches)

    prepare = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=-1)(_prepare)
    pending = [prepare.remote(cfg, n, _state_entries(cache, n, n_batches), threads)
               for n in names]
    for ref in pending:
        for parts, value in ray.get(ref).items():
            cache.put(value, *parts)

    if actors_per_model is None:
        slots = ray.cluster_resources().get("GPU" if gpus else "CPU", 1)
        actors_per_model = max(1, int(slots) // max(1, len(names)))
    worker = ray.remote(num_cpus=1, num_gpus=gpus, max_restarts=-1,
                        max_task_retries=-1)(ModelWorker)
    todo = _jobs(cfg, cache, names, n_batches)
    bars, maps = _progress(cfg, data, cache, names, todo, progress)
    entries = {name: [ray.put(_state_entries(cache, name, n_batches))] for name in names}
    actors = {name: [worker.remote(cfg, name, threads) for _ in range(actors_per_model)]
              for name in names if todo[name]}
    try:
        _dispatch(actors, todo, entries, cache, lambda job: bars.advance(maps(*job), True),
                  on_result)
    finally:
        bars.close()
        for handles in actors.values():
            for a in handles:
                ray.kill(a)
