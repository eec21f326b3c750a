"""Where resume lives: which runs are left, where each starts, and how they are cut into shards.

Every start of a study (a first run, ``--resume``, the same command run again, a retry after a Ray worker died) goes
through here: the Store says which runs are complete and the last epoch each other run committed; a run continues
from that epoch's checkpoint. Nothing else in initlab decides where a run starts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from initlab.store import RunRecord, RunSpec, Store
from initlab.studies.shard import ShardRun
from initlab.studies.sink import COMPLETE, Progress
from initlab.studies.spec import Study


@dataclass(frozen=True)
class Plan:
    """The study's runs (with where each starts), those left to train, and the progress so far."""

    runs: tuple[ShardRun, ...]
    pending: tuple[ShardRun, ...]
    progress: Progress


def scheme_record(scheme: str | dict[str, Any]) -> dict[str, Any]:
    """An arm's scheme as the Store records it: the config dict, or ``{"name": ...}`` for a name."""
    return scheme if isinstance(scheme, dict) else {"name": scheme}


def register(study: Study, store: Store, epochs_per_run: int) -> Plan:
    """Record the study's runs in ``store`` (known ones are kept) and plan what is left from what it committed."""
    run_list = study.run_ids()
    store.add_runs([RunSpec(rid, arm.label, scheme_record(arm.scheme), seed) for rid, arm, seed in run_list])
    records = {r.run_id: r for r in store.runs()}
    arm_index = {arm.label: i for i, arm in enumerate(study.arms)}
    runs = tuple(ShardRun(rid, arm_index[arm.label], seed, records[rid].last_epoch) for rid, arm, seed in run_list)
    progress = Progress(total_epochs=epochs_per_run * len(run_list), total_runs=len(run_list))
    for r in records.values():
        progress.done_epochs += epochs_per_run if r.status in COMPLETE else r.last_epoch
        progress.finished_runs += r.status == "finished"
        progress.diverged_runs += r.status == "diverged"
    return Plan(runs, tuple(r for r in runs if records[r.run_id].status not in COMPLETE), progress)


def shards(all_runs: Sequence[ShardRun], pending: Sequence[ShardRun], workers: int) -> list[list[ShardRun]]:
    """Cut the study into at most ``workers`` shards, then keep each shard's pending runs.

    The shards are planned over *all* runs of the study (in seed order, near-equal sizes), not over the pending ones,
    so a resumed study trains the same populations as an uninterrupted one and reproduces its numbers bit for bit
    (the summation order of a stacked matrix product depends on the population). A shard's runs are committed
    together, so they resume from the same epoch; should they not, the shard is split by start epoch.
    """
    ordered = sorted(all_runs, key=lambda r: (r.seed, r.arm_index))
    k = max(1, min(workers, len(ordered)))
    size = math.ceil(len(ordered) / k)
    by_id = {r.run_id: r for r in pending}
    out: list[list[ShardRun]] = []
    for i in range(0, len(ordered), size):
        mine = [by_id[r.run_id] for r in ordered[i : i + size] if r.run_id in by_id]
        for epoch in sorted({r.start_epoch for r in mine}):
            out.append([r for r in mine if r.start_epoch == epoch])
    return out


def unfinished(store: Store, runs: Sequence[ShardRun]) -> list[ShardRun]:
    """The runs among ``runs`` that are not complete, each starting from the last epoch the Store committed."""
    records: dict[str, RunRecord] = {r.run_id: r for r in store.runs()}
    return [
        replace(r, start_epoch=records[r.run_id].last_epoch) for r in runs if records[r.run_id].status not in COMPLETE
    ]


def default_workers(num_runs: int) -> int:
    """One worker per core (each with one thread), but no more workers than runs."""
    return max(1, min(os.cpu_count() or 1, num_runs))


def threads_per_worker(workers: int, device: str) -> int:
    """Intra-op threads of each worker: the cores divided among the workers (one on a GPU).

    It follows from the study's worker count, not from what is left to do: the thread count changes the blocking of
    matrix products, and a resumed study must reproduce the same numbers.
    """
    return max(1, (os.cpu_count() or 1) // workers) if device == "cpu" else 1
