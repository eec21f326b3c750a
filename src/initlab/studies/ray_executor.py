"""Running a study's shards as tasks on a Ray cluster (``run_study(..., executor="ray")``).

The study is cut into the same shards as on one machine (:func:`~initlab.studies.runner.plan_shards`), and each
shard becomes one Ray task that runs :func:`~initlab.studies.runner.train_shard`. The driver keeps the study lock and
stays the Store's only writer: a task puts its events into a :class:`ray.util.queue.Queue` (an actor), and the
driver takes them out and applies them with the same handler as the local executor. Checkpoints are files that a
task writes into the study folder, so that folder must be on storage every node can reach.

Retries. A task whose worker or node dies is not retried by Ray (``max_retries=0``) but by the driver: it first
applies every event the task sent before it died, then re-plans the shard's unfinished runs from what the Store has
committed (their ``last_epoch``), exactly as a local resume does, records the retry (``Store.bump_attempts``) and
submits the new task, which continues from the runs' last checkpoints. After :data:`MAX_RETRIES` retries the runs are
marked failed. An exception raised by the training code itself is not retried: it would fail again.

This module imports Ray at the top; ``runner`` imports it only when ``executor="ray"`` is asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

try:
    import ray
    from ray.util.queue import Empty, Queue
except ImportError as exc:  # the optional extra is not installed
    raise ImportError('executor="ray" needs Ray, an optional extra of initlab: pip install "initlab[ray]"') from exc

from initlab.store import Store
from initlab.studies.runner import Event, Progress, ShardRun, _handle, plan_shards, train_shard
from initlab.studies.spec import Study

log = logging.getLogger(__name__)

#: How many times the driver resubmits a shard whose task died before it marks the shard's runs failed.
MAX_RETRIES = 3

_DONE = ("finished", "diverged")


def _run_shard(
    config: dict[str, Any],
    runs: Sequence[ShardRun],
    out_dir: str,
    shard: int,
    device: str,
    threads: int,
    events: Queue,
) -> None:
    """The Ray task: train one shard, sending every event (and first where it runs) through ``events``."""
    events.put(Event("started", shard, {"pid": os.getpid(), "host": socket.gethostname()}))
    try:
        train_shard(config, runs, out_dir, shard, device, threads, events.put)
        events.put(Event("done", shard))
    except Exception as exc:  # reported, not raised: a failure of the training code is not retried
        events.put(Event("error", shard, {"message": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}))


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


def drive(
    study: Study,
    out: Path,
    store: Store,
    all_runs: Sequence[ShardRun],
    pending: Sequence[ShardRun],
    *,
    workers: int | None,
    device: str,
    progress: Progress,
    on_progress: Callable[[Progress], None] | None,
    address: str | None,
    max_retries: int | None = None,
) -> None:
    """Train the ``pending`` runs as Ray tasks and commit their events to ``store`` as they arrive.

    ``workers`` (default: the cluster's CPUs, at most one per run) sets the number of shards, as locally; the same
    count on a cluster with the same CPUs per task reproduces a local study's numbers. A shard whose task dies is
    retried up to ``max_retries`` times (default :data:`MAX_RETRIES`).
    """
    max_retries = MAX_RETRIES if max_retries is None else max_retries
    with _connected(address):
        n_workers = workers or max(1, min(int(ray.cluster_resources().get("CPU", 1)), len(all_runs)))
        threads, num_gpus, task_device = _resources(device, n_workers)
        shards = plan_shards(all_runs, pending, n_workers)
        _Driver(study, out, store, shards, progress, on_progress, max_retries).run(threads, num_gpus, task_device)


class _Driver:
    """Submits the shards, applies their events, and resubmits a shard whose task died."""

    def __init__(
        self,
        study: Study,
        out: Path,
        store: Store,
        shards: list[list[ShardRun]],
        progress: Progress,
        on_progress: Callable[[Progress], None] | None,
        max_retries: int,
    ) -> None:
        self.config = study.config()
        # Tasks may run in another folder or on another node: hand them the absolute path of the (shared) folder.
        self.out = out.resolve()
        self.store = store
        self.shards = shards  # grows: a retried shard is appended under a new index
        self.progress = progress
        self.on_progress = on_progress
        self.max_retries = max_retries
        self.pending: set[int] = set()
        self.retries: dict[int, int] = {}  # shard index -> retries that led to it
        self.tasks: dict[Any, int] = {}  # ObjectRef -> shard index

    def run(self, threads: int, num_gpus: float, device: str) -> None:
        self.events = Queue(actor_options={"num_cpus": 0})
        self.task = ray.remote(_run_shard).options(num_cpus=threads, num_gpus=num_gpus, max_retries=0)
        self.threads, self.device = threads, device
        try:
            for i in range(len(self.shards)):
                self._submit(i)
            while self.pending:
                try:
                    self._apply(self.events.get(timeout=0.5))
                    continue
                except Empty:
                    pass
                ready, _ = ray.wait(list(self.tasks), num_returns=len(self.tasks), timeout=0)
                for ref in ready:
                    shard = self.tasks.pop(ref)
                    self._drain()  # a task's events are all queued by the time it ends: apply them first
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker, its node or its object died
                        if shard in self.pending:
                            self._retry(shard, exc)
                    if shard in self.pending:  # ended without a word (cannot happen unless the queue failed)
                        self._apply(Event("error", shard, {"message": "the Ray task ended without a result",
                                                           "trace": ""}))  # fmt: skip
        finally:
            # An interrupted driver leaves no task writing checkpoints; a resume continues from the committed ones.
            for ref in self.tasks:
                ray.cancel(ref, force=True)
            with contextlib.suppress(Exception):
                self.events.shutdown(force=True)

    def _submit(self, shard: int) -> None:
        ref = self.task.remote(self.config, self.shards[shard], str(self.out), shard, self.device, self.threads,
                               self.events)  # fmt: skip
        self.tasks[ref] = shard
        self.pending.add(shard)

    def _drain(self) -> None:
        while True:
            try:
                self._apply(self.events.get_nowait())
            except Empty:
                return

    def _apply(self, event: Event) -> None:
        if event.kind == "started":
            log.info(
                "shard %d runs in process %d on %s",
                event.shard,
                event.payload["pid"],
                event.payload["host"],
                extra={"shard": event.shard, "pid": event.payload["pid"], "host": event.payload["host"]},
            )
            return
        _handle(event, self.store, self.out, self.shards, self.progress, self.pending)
        if self.on_progress:
            self.on_progress(self.progress)

    def _retry(self, shard: int, exc: Exception) -> None:
        """Re-plan the shard's unfinished runs from the Store's committed epochs and submit them again."""
        records = {r.run_id: r for r in self.store.runs()}
        left = [
            replace(r, start_epoch=records[r.run_id].last_epoch)
            for r in self.shards[shard]
            if records[r.run_id].status not in _DONE
        ]
        tries = self.retries.get(shard, 0) + 1
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not left:
            self.pending.discard(shard)
            return
        if tries > self.max_retries:
            message = (
                f"the Ray task of this run's shard died and was retried {tries - 1} times (last: {reason}); "
                "check the cluster's nodes, then resume the study to continue from the last committed epoch"
            )
            self._apply(Event("error", shard, {"message": message, "trace": ""}))
            return
        self.pending.discard(shard)
        for r in left:
            self.store.bump_attempts(r.run_id)
        log.warning(
            "shard %d: its Ray task died (%s); retry %d of %d for %d runs from epoch %s",
            shard,
            reason,
            tries,
            self.max_retries,
            len(left),
            "/".join(str(e) for e in sorted({r.start_epoch for r in left})),
        )
        # Grouped as a local resume groups them: together, split only if their committed epochs differ.
        for part in plan_shards(self.shards[shard], left, 1):
            self.shards.append(part)
            new = len(self.shards) - 1
            self.retries[new] = tries
            self._submit(new)
