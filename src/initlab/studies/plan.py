"""Where resume lives: which runs are left, where each starts, and how they are cut into shards.

Every start of a study (a first run, ``--resume``, the same command run again, a retry after a Ray worker died) goes
through here: the Store says which runs are complete and the last epoch each other run committed; a run continues
from that epoch's checkpoint. Nothing else in initlab decides where a run starts.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from initlab.store import RunRecord, RunSpec, Store
from initlab.studies import checkpoints
from initlab.studies.shard import ShardRun
from initlab.studies.sink import COMPLETE, Progress
from initlab.studies.spec import Study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    """The study's runs (with where each starts), those left to train, and the progress so far."""

    runs: tuple[ShardRun, ...]
    pending: tuple[ShardRun, ...]
    progress: Progress


def scheme_record(scheme: str | dict[str, Any]) -> dict[str, Any]:
    """An arm's scheme as the Store records it: the config dict, or ``{"name": ...}`` for a name."""
    return scheme if isinstance(scheme, dict) else {"name": scheme}


def register(study: Study, store: Store, train_size: int, out_dir: Path | None = None) -> Plan:
    """Record the study's runs in ``store`` (known ones are kept) and plan what is left from what it committed.

    ``train_size`` (training samples) converts a budget in steps into epochs for the progress count. With
    ``out_dir`` (the study folder), every unfinished run's checkpoint is checked first (:func:`repair`)."""
    run_defs = study.runs()
    store.add_runs(
        [RunSpec(r.run_id, r.label, scheme_record(study.arms[r.arm_index].scheme), r.seed) for r in run_defs]
    )
    if out_dir is not None:
        repair(store, out_dir)
    records = {r.run_id: r for r in store.runs()}
    runs = tuple(ShardRun(r.run_id, r.arm_index, r.seed, records[r.run_id].last_epoch, r.point_index) for r in run_defs)
    points = study.points()
    epochs = {r.run_id: study.settings_for(points[r.point_index]).total_epochs(train_size) for r in run_defs}
    progress = Progress(total_epochs=sum(epochs.values()), total_runs=len(run_defs))
    for r in records.values():
        progress.done_epochs += epochs.get(r.run_id, r.last_epoch) if r.status in COMPLETE else r.last_epoch
        progress.finished_runs += r.status == "finished"
        progress.diverged_runs += r.status == "diverged"
    return Plan(runs, tuple(r for r in runs if records[r.run_id].status not in COMPLETE), progress)


def repair(store: Store, out_dir: Path) -> list[str]:
    """Check the checkpoint of every unfinished run's last committed epoch against the SHA-256 the Store recorded;
    roll a run whose checkpoint is missing or damaged back to its newest intact older checkpoint, or to epoch 0, and
    say so (a warning, and the run's message in the Store). Other runs are not touched. Returns the warnings."""
    notes = []
    for record in store.runs():
        if record.status in COMPLETE or record.last_epoch == 0:
            continue
        epoch = record.last_epoch
        trouble = checkpoints.problem(out_dir, record.run_id, epoch, store.checkpoint_checksum(record.run_id, epoch))
        if trouble is None:
            continue
        good = next((e for e in range(epoch - 1, 0, -1) if _intact(store, out_dir, record.run_id, e)), 0)
        note = (f"run {record.run_id}: {trouble}; it continues from epoch {good} (the epochs after it are trained "
                "again).")  # fmt: skip
        log.warning(note)
        notes.append(note)
        checkpoints.path(out_dir, record.run_id, epoch).unlink(missing_ok=True)
        store.rollback(record.run_id, good, message=note)
    return notes


def _intact(store: Store, out_dir: Path, run_id: str, epoch: int) -> bool:
    return checkpoints.problem(out_dir, run_id, epoch, store.checkpoint_checksum(run_id, epoch)) is None


#: The most runs one shard trains as a population (a bigger population is cut into near-equal shards).
MAX_SHARD_RUNS = 128


def shards(
    all_runs: Sequence[ShardRun],
    pending: Sequence[ShardRun],
    population: Callable[[ShardRun], Hashable] | None = None,
) -> list[list[ShardRun]]:
    """Cut the study into its populations, then keep each one's pending runs.

    A function of the study alone (never of the worker count or the machine), so that any number of workers, either
    executor and a resume train the same populations and store the same numbers: a model's arithmetic in a stacked
    population depends on which models it is stacked with. Runs with equal ``population(run)`` keys (the same
    architecture and training settings but the learning rate; see :meth:`Study.population_key`) form one population,
    in seed order, cut into near-equal shards of at most :data:`MAX_SHARD_RUNS` runs; runs with different keys never
    share a shard. The shards are planned over *all* runs of the study, not over the pending ones, so a resumed study
    trains the populations of an uninterrupted one. A shard's runs are committed together, so they resume from the
    same epoch; should they not (a run rolled back by :func:`repair`), the shard is split by start epoch.
    """
    ordered = sorted(all_runs, key=lambda r: (r.seed, r.arm_index, r.point_index))
    groups: dict[Hashable, list[ShardRun]] = {}
    for r in ordered:
        groups.setdefault(None if population is None else population(r), []).append(r)
    by_id = {r.run_id: r for r in pending}
    out: list[list[ShardRun]] = []
    for group in groups.values():
        size = math.ceil(len(group) / math.ceil(len(group) / MAX_SHARD_RUNS))
        for i in range(0, len(group), size):
            mine = [by_id[r.run_id] for r in group[i : i + size] if r.run_id in by_id]
            for epoch in sorted({r.start_epoch for r in mine}):
                out.append([r for r in mine if r.start_epoch == epoch])
    return out


def population_of(study: Study) -> Callable[[ShardRun], Hashable] | None:
    """The population key of a run of ``study`` for :func:`shards` (None without a sweep: one population)."""
    if not study.sweep:
        return None
    populations = study.population_indices()
    return lambda run: populations[run.point_index]


def unfinished(store: Store, runs: Sequence[ShardRun]) -> list[ShardRun]:
    """The runs among ``runs`` that are not complete, each starting from the last epoch the Store committed."""
    records: dict[str, RunRecord] = {r.run_id: r for r in store.runs()}
    return [
        replace(r, start_epoch=records[r.run_id].last_epoch) for r in runs if records[r.run_id].status not in COMPLETE
    ]


def default_workers(num_shards: int) -> int:
    """One worker per core, but no more workers than shards (a lone shard gets every core's thread instead)."""
    return max(1, min(os.cpu_count() or 1, num_shards))


def threads_per_worker(workers: int, device: str) -> int:
    """Intra-op threads of each worker: the cores divided among the workers (one on a GPU).

    It follows from the study's worker count, not from what is left to do: the thread count changes the blocking of
    matrix products, and a resumed study must reproduce the same numbers.
    """
    return max(1, (os.cpu_count() or 1) // workers) if device == "cpu" else 1
