"""The Ray executor: a study's shards as tasks on a Ray cluster (``run_study(..., executor="ray")``).

The study is cut into the same shards as on one machine and each shard becomes one Ray task that runs
:func:`~initlab.studies.shard.run_shard`. The driver keeps the study lock and stays the Store's only writer: a task
puts its events into a :class:`ray.util.queue.Queue` (an actor), and the driver applies them with the same
:class:`~initlab.studies.sink.Sink` as the local executor. Checkpoints are files that a task writes into the study
folder, so that folder must be on storage every node can reach.

Retries. A task whose worker or node dies is not retried by Ray (``max_retries=0``) but by the driver: it first
applies every event the task sent before it died, then re-plans the shard's unfinished runs from what the Store has
committed (:func:`initlab.studies.plan.unfinished`, exactly as a resume does), records the retry
(``Store.bump_attempts``) and submits the new task, which continues from the runs' last checkpoints. After
:data:`MAX_RETRIES` retries the runs are marked failed. An exception raised by the training code itself is not
retried: it would fail again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

try:
    import ray
    from ray.util.queue import Empty, Queue
except ImportError as exc:  # the optional extra is not installed
    raise ImportError('executor="ray" needs Ray, an optional extra of initlab: pip install "initlab[ray]"') from exc

from initlab import factory
from initlab.studies import plan
from initlab.studies.events import ShardFailed, ShardStarted
from initlab.studies.shard import ShardTask, run_shard
from initlab.studies.sink import Sink
from initlab.studies.spec import Study

log = logging.getLogger(__name__)

#: How many times the driver resubmits a shard whose task died before it marks the shard's runs failed.
MAX_RETRIES = 3


def _task(task: ShardTask, events: Queue) -> None:
    """The Ray task: say where it runs, then train the shard, sending every event through ``events``."""
    events.put(ShardStarted(task.shard, os.getpid(), socket.gethostname()))
    run_shard(task, events.put)


def drive(
    study: Study,
    study_plan: plan.Plan,
    sink: Sink,
    *,
    out_dir: Path,
    device: str,
    workers: int | None,
    address: str | None = None,
    splits: object = None,
) -> None:
    """Train the plan's pending runs as Ray tasks and apply their events as they arrive.

    The shards are those of a local run (:func:`initlab.studies.plan.shards`, a function of the study alone), so a
    Ray study stores a local study's numbers. ``workers`` (default: the cluster's CPUs, at most one per shard)
    divides the CPUs among the tasks, as locally. ``splits`` (the driver's copy of the data) is not sent: each task
    reads the data set on its own node, which may be another machine.
    """
    if factory.is_object(study.model):
        raise ValueError(f"model {study.model!r} is a Python object of this process, which Ray tasks cannot import; "
                         "give an import path (package.module:factory) or use the local executor.")  # fmt: skip
    population = plan.population_of(study)
    with _connected(address):
        count = len(plan.shards(study_plan.runs, study_plan.runs, population))
        n_workers = min(workers, count) if workers else max(1, min(int(ray.cluster_resources().get("CPU", 1)), count))
        threads, num_gpus, task_device = _resources(device, n_workers)
        # Tasks may run in another folder or on another node: hand them the absolute path of the (shared) folder.
        template = ShardTask(study, (), out_dir.resolve(), 0, task_device, threads)
        driver = _Driver(template, sink, ray.remote(_task).options(num_cpus=threads, num_gpus=num_gpus, max_retries=0))
        driver.run(plan.shards(study_plan.runs, study_plan.pending, population))


@contextlib.contextmanager
def _connected(address: str | None) -> Iterator[None]:
    """Join the cluster at ``address`` unless this process already has; leave it afterwards if we joined it."""
    if ray.is_initialized():
        if address is not None:
            log.info("Ray is already initialized in this process; address=%r is not used", address)
        yield
        return
    try:
        ray.init(address=address)
    except ConnectionError as exc:
        raise RuntimeError(
            f"could not connect to the Ray cluster at {address!r}: {exc}. Check the address (ray://HOST:10001 for a "
            "remote cluster, auto for the one this machine belongs to) or leave it out to start a local one."
        ) from exc
    try:
        yield
    finally:
        ray.shutdown()


def _resources(device: str, n_workers: int) -> tuple[int, float, str]:
    """Threads (= CPUs requested) and GPUs per task, and the device a task trains on."""
    cpus = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
    total_cpus, node_cpus = int(sum(cpus)), int(max(cpus, default=0))
    if total_cpus < 1:
        raise RuntimeError("the Ray cluster has no CPUs to run tasks on; add a worker node or start Ray with CPUs.")
    if not device.startswith("cuda"):
        # As on one machine, the workers divide the cores; a task never asks for more than one node has.
        return max(1, min(node_cpus, total_cpus // n_workers)), 0.0, device
    gpus = ray.cluster_resources().get("GPU", 0)
    if gpus <= 0:
        raise ValueError(f"device={device!r} but the Ray cluster has no GPUs; use device='cpu'.")
    # Ray hands each task its own CUDA_VISIBLE_DEVICES, so the task trains on "cuda" whatever index was asked for.
    return 1, min(1.0, gpus / n_workers), "cuda"


class _Driver:
    """Submits the shards, applies their events, and resubmits a shard whose task died."""

    def __init__(self, template: ShardTask, sink: Sink, remote: Any) -> None:
        self.template, self.sink, self.remote = template, sink, remote
        self.retries: dict[int, int] = {}  # shard index -> retries that led to it
        self.tasks: dict[Any, int] = {}  # ObjectRef -> shard index

    def run(self, shards: list[list[plan.ShardRun]]) -> None:
        self.events = Queue(actor_options={"num_cpus": 0})
        try:
            for runs in shards:
                self._submit(runs, tries=0)
            while self.sink.running:
                try:
                    self.sink(self.events.get(timeout=0.5))
                    continue
                except Empty:
                    pass
                ready, _ = ray.wait(list(self.tasks), num_returns=len(self.tasks), timeout=0)
                for ref in ready:
                    self._ended(ref)
        finally:
            # An interrupted driver leaves no task writing checkpoints; a resume continues from the committed ones.
            for ref in self.tasks:
                ray.cancel(ref, force=True)
            with contextlib.suppress(Exception):
                self.events.shutdown(force=True)

    def _submit(self, runs: list[plan.ShardRun], *, tries: int) -> None:
        shard = self.sink.add(runs)
        self.retries[shard] = tries
        self.tasks[self.remote.remote(replace(self.template, runs=tuple(runs), shard=shard), self.events)] = shard

    def _ended(self, ref: Any) -> None:
        shard = self.tasks.pop(ref)
        while True:  # a task's events are all queued by the time it ends: apply them first
            try:
                self.sink(self.events.get_nowait())
            except Empty:
                break
        try:
            ray.get(ref)
        except ray.exceptions.RayError as exc:  # the worker, its node or its object died
            if shard in self.sink.running:
                self._retry(shard, exc)
        if shard in self.sink.running:  # ended without a word (cannot happen unless the queue failed)
            self.sink(ShardFailed(shard, "the Ray task ended without a result"))

    def _retry(self, shard: int, exc: Exception) -> None:
        """Re-plan the shard's unfinished runs from the Store's committed epochs and submit them again."""
        left = plan.unfinished(self.sink.store, self.sink.shards[shard])
        tries = self.retries[shard] + 1
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not left:
            self.sink.running.discard(shard)
            return
        if tries > MAX_RETRIES:
            message = (
                f"the Ray task of this run's shard died and was retried {tries - 1} times (last: {reason}); "
                "check the cluster's nodes, then resume the study to continue from the last committed epoch"
            )
            self.sink(ShardFailed(shard, message))
            return
        self.sink.running.discard(shard)
        for r in left:
            self.sink.store.bump_attempts(r.run_id)
        epochs = "/".join(str(e) for e in sorted({r.start_epoch for r in left}))
        log.warning("shard %d: its Ray task died (%s); retry %d of %d for %d runs from epoch %s",
                    shard, reason, tries, MAX_RETRIES, len(left), epochs)  # fmt: skip
        # Grouped as a resume groups them: together, split only if their committed epochs differ.
        for part in plan.shards(self.sink.shards[shard], left):
            self._submit(part, tries=tries)
