"""The local executor: a study's shards in worker processes on this machine, one thread each by default.

With one worker, or a model given as a Python object (:func:`initlab.factory.register`), the shards train in this
process, one after the other (inside ``torch.random.fork_rng``, so the
caller's random state is unchanged). Otherwise each shard gets a spawned process, at most ``workers`` at a time,
that sends its events through a queue; a worker killed without a word (out of memory, a signal) has its shard marked
failed, and a worker dies with its driver.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import queue
import signal
from pathlib import Path

import torch

from initlab import factory
from initlab.studies import plan
from initlab.studies.build import Splits
from initlab.studies.events import ShardFailed
from initlab.studies.shard import ShardTask, run_shard
from initlab.studies.sink import Sink
from initlab.studies.spec import Study


def drive(
    study: Study,
    study_plan: plan.Plan,
    sink: Sink,
    *,
    out_dir: Path,
    device: str,
    workers: int | None,
    splits: Splits | None = None,
) -> None:
    """Train the plan's pending shards in ``workers`` processes (default: one per core, at most one per shard) and
    apply their events. ``splits``, the study's data as the driver loaded it, go to every shard: a worker process
    receives their tensors in shared memory (torch's multiprocessing pickler moves them there once) instead of
    reading the data set itself."""
    population = plan.population_of(study)
    cut = plan.shards(study_plan.runs, study_plan.pending, population)
    count = len(plan.shards(study_plan.runs, study_plan.runs, population))
    n_workers = min(workers, count) if workers else plan.default_workers(count)  # no idle worker holds cores
    threads = plan.threads_per_worker(n_workers, device)
    tasks = [ShardTask(study, tuple(runs), out_dir, sink.add(runs), device, threads, splits) for runs in cut]
    if n_workers == 1 or factory.is_object(study.model):  # a Python object lives in this process only
        _in_process(tasks, sink)
    else:
        _in_workers(tasks, sink, n_workers)


def _in_process(tasks: list[ShardTask], sink: Sink) -> None:
    with torch.random.fork_rng():
        saved_threads = torch.get_num_threads()
        try:
            for task in tasks:
                run_shard(task, sink)
        finally:
            torch.set_num_threads(saved_threads)


def _worker_main(task: ShardTask, events: mp.Queue) -> None:
    # Linux kills this worker when the driver dies (PR_SET_PDEATHSIG): a killed study leaves no trainer behind.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    run_shard(task, events.put)


def _in_workers(tasks: list[ShardTask], sink: Sink, workers: int) -> None:
    """Run the shards in at most ``workers`` processes at a time (a sweep may have more populations than workers)."""
    ctx = mp.get_context("spawn")
    events: mp.Queue = ctx.Queue()
    waiting = list(tasks)
    procs: dict[int, mp.process.BaseProcess] = {}
    try:
        while sink.running:
            while waiting and sum(s in sink.running for s in procs) < workers:
                task = waiting.pop(0)
                procs[task.shard] = ctx.Process(target=_worker_main, args=(task, events), daemon=True)
                procs[task.shard].start()
            try:
                sink(events.get(timeout=0.5))
            except queue.Empty:
                _reap(procs, events, sink)
    finally:
        for p in procs.values():
            p.join(timeout=5)
            if p.is_alive():
                p.kill()


def _reap(procs: dict[int, mp.process.BaseProcess], events: mp.Queue, sink: Sink) -> None:
    """Mark the shards of workers that died without a word failed, after applying what they sent."""
    for shard, p in procs.items():
        if shard in sink.running and not p.is_alive() and p.exitcode not in (0, None):
            with contextlib.suppress(queue.Empty):
                while True:
                    sink(events.get(timeout=0.2))
            if shard in sink.running:
                sink(ShardFailed(shard, f"worker {shard} died (exit code {p.exitcode})"))
