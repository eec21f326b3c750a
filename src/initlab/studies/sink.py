"""The driver's side of a study: apply the shards' events to the Store, in order, and keep the progress.

The driver is the Store's only writer, whatever the executor. An epoch's rows are committed in one transaction, and
only then are the runs' older checkpoints deleted (see :mod:`initlab.studies.checkpoints`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from initlab.store import Store
from initlab.studies import checkpoints
from initlab.studies.events import Diagnosed, EpochDone, Event, ShardDone, ShardFailed, ShardStarted, TestDone
from initlab.studies.shard import ShardRun

log = logging.getLogger(__name__)

#: Run statuses after which a run is never trained again.
COMPLETE = ("finished", "diverged")


@dataclass
class Progress:
    """What the driver reports to a progress callback after every event."""

    total_epochs: int
    done_epochs: int = 0
    finished_runs: int = 0
    diverged_runs: int = 0
    failed_runs: int = 0
    total_runs: int = 0
    message: str = ""


class Sink:
    """Applies events to ``store`` and ``progress``; knows which shards are still running.

    ``shards`` may grow while the study runs (a retried shard is appended under a new index): :meth:`add` registers
    one. ``on_progress`` is called after every event.
    """

    def __init__(
        self,
        store: Store,
        out_dir: Path,
        progress: Progress,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.store, self.out_dir, self.progress, self.on_progress = store, out_dir, progress, on_progress
        self.shards: list[Sequence[ShardRun]] = []
        self.running: set[int] = set()

    def add(self, runs: Sequence[ShardRun]) -> int:
        """Register a shard about to be submitted; return its index."""
        self.shards.append(runs)
        self.running.add(len(self.shards) - 1)
        return len(self.shards) - 1

    def __call__(self, event: Event) -> None:
        self.apply(event)
        if self.on_progress and not isinstance(event, ShardStarted):
            self.on_progress(self.progress)

    def apply(self, event: Event) -> None:
        """Write one event to the Store and count it."""
        match event:
            case EpochDone(epoch=epoch, rows=rows, diverged=diverged, checksums=checksums):
                self.store.record_epochs(list(rows), checksums=checksums)
                for run_id in diverged:
                    message = f"loss non-finite or above max_loss in epoch {epoch}"
                    self.store.set_status(run_id, "diverged", diverged_epoch=epoch, message=message)
                    checkpoints.prune(self.out_dir, run_id, None)
                    self.progress.diverged_runs += 1
                for row in rows:
                    if row.run_id not in diverged:
                        checkpoints.prune(self.out_dir, row.run_id, row.epoch)
                self.progress.done_epochs += len(rows)
            case TestDone(run_id=run_id, metrics=metrics, wall_time_s=wall):
                self.store.record_test(run_id, metrics, wall_time_s=wall)
                checkpoints.prune(self.out_dir, run_id, None)
                self.progress.finished_runs += 1
            case Diagnosed(run_id=run_id, epoch=epoch, data=data):
                self.store.record_diagnostics(run_id, epoch, data)
            case ShardFailed(shard=shard, message=message, trace=trace):
                log.error("shard %d failed: %s\n%s", shard, message, trace)
                self.fail(shard, message)
            case ShardDone(shard=shard):
                self.running.discard(shard)
            case ShardStarted(shard=shard, pid=pid, host=host):
                log.info("shard %d runs in process %d on %s", shard, pid, host,
                         extra={"shard": shard, "pid": pid, "host": host})  # fmt: skip
            case _:
                raise TypeError(f"unknown study event {event!r}")

    def fail(self, shard: int, message: str) -> None:
        """Mark the shard's unfinished runs failed with ``message``; the shard is no longer running."""
        status = {r.run_id: r.status for r in self.store.runs()}
        for r in self.shards[shard]:
            if status[r.run_id] not in COMPLETE:
                self.store.set_status(r.run_id, "failed", message=message)
                self.progress.failed_runs += 1
        self.progress.message = message
        self.running.discard(shard)
