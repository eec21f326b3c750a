"""``initlab doctor``: check a study folder, and salvage what is intact into a new one that resumes.

:func:`examine` reads the folder without writing to it: SQLite's ``quick_check`` of the database, then every run
with its epochs, diagnoses and test metrics (a run whose rows cannot be read is listed as damaged), and the checkpoint
of every unfinished run against the SHA-256 the Store recorded. :func:`salvage` copies what is intact into a new
folder: the study, every run, the epochs and diagnoses of each run that can be read, finished runs' test metrics,
diverged runs' status, and the checkpoints of unfinished runs; ``initlab compare --resume NEW`` then trains what is
missing (a run whose rows were damaged starts again from epoch 0; a run whose checkpoint is damaged continues from
its newest intact one, see :func:`initlab.studies.plan.repair`).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from initlab.store import DB_FILENAME, EpochRecord, RunRecord, RunSpec, Store
from initlab.store.schema import open_connection, quick_check
from initlab.studies import checkpoints
from initlab.studies.sink import COMPLETE

log = logging.getLogger(__name__)


@dataclass
class RunHealth:
    """One run as read back: its record, its readable epochs and diagnoses, and what is wrong (empty: nothing)."""

    record: RunRecord
    epochs: list[EpochRecord] = field(default_factory=list)
    diagnoses: list[tuple[int, dict]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rows_intact: bool = True  # its epochs and diagnoses read back whole (else it starts again from epoch 0)


@dataclass
class Examination:
    """What :func:`examine` found."""

    folder: Path
    database: list[str] = field(default_factory=list)  # quick_check's problems; empty when intact
    unreadable: str | None = None  # why the study or its runs cannot be read at all
    runs: list[RunHealth] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.database and self.unreadable is None and not any(r.problems for r in self.runs)

    def lines(self) -> list[str]:
        """The findings in words, one per line."""
        out = [f"database: {'intact' if not self.database else 'DAMAGED: ' + '; '.join(self.database[:3])}"]
        if self.unreadable is not None:
            return [*out, f"cannot read the study: {self.unreadable}; nothing can be salvaged."]
        damaged = [r for r in self.runs if r.problems]
        out.append(f"runs: {len(self.runs)}, {len(self.runs) - len(damaged)} intact, {len(damaged)} with problems")
        out += [f"  {r.record.run_id}: {'; '.join(r.problems)}" for r in damaged]
        return out


def examine(folder: str | Path) -> Examination:
    """Check the study in ``folder`` without writing to it (see the module docstring)."""
    folder = Path(folder)
    result = Examination(folder)
    db = folder / DB_FILENAME
    try:
        conn = open_connection(db, readonly=True)
    except (ValueError, FileNotFoundError) as exc:
        result.unreadable = str(exc)
        return result
    try:
        result.database = quick_check(conn)
    except sqlite3.DatabaseError as exc:
        result.database = [str(exc)]
    finally:
        conn.close()
    try:
        with Store(db, readonly=True) as store:
            store.study()
            records = store.runs()
            result.runs = [_run_health(store, folder, record) for record in records]
    except (sqlite3.DatabaseError, ValueError) as exc:
        result.unreadable = f"{type(exc).__name__}: {exc}"
    return result


def _run_health(store: Store, folder: Path, record: RunRecord) -> RunHealth:
    health = RunHealth(record)
    try:
        health.epochs = store.epochs(record.run_id)
    except (sqlite3.DatabaseError, ValueError) as exc:
        health.problems.append(f"its epochs cannot be read ({exc})")
        health.rows_intact = False
    if health.rows_intact and [e.epoch for e in health.epochs] != list(range(1, record.last_epoch + 1)):
        health.problems.append(f"it has epochs {[e.epoch for e in health.epochs]}, expected 1..{record.last_epoch}")
        health.rows_intact = False
    try:
        health.diagnoses = [(epoch, data) for _, epoch, data in store.diagnostics(record.run_id)]
    except (sqlite3.DatabaseError, ValueError) as exc:
        health.problems.append(f"its diagnoses cannot be read ({exc})")
        health.rows_intact = False
    if record.status not in COMPLETE and record.last_epoch > 0:
        sha = store.checkpoint_checksum(record.run_id, record.last_epoch)
        trouble = checkpoints.problem(folder, record.run_id, record.last_epoch, sha)
        if trouble is not None:
            health.problems.append(trouble)
    return health


def salvage(folder: str | Path, new_folder: str | Path) -> Examination:
    """Copy what is intact of the study in ``folder`` into ``new_folder`` (which must not hold a study); return the
    examination it was based on. ValueError when nothing can be salvaged."""
    found = examine(folder)
    if found.unreadable is not None:
        raise ValueError(f"cannot salvage {folder}: {found.unreadable}")
    new = Path(new_folder)
    if (new / DB_FILENAME).exists():
        raise ValueError(f"{new} already holds a study; salvage into a new folder.")
    with Store(Path(folder) / DB_FILENAME, readonly=True) as old:
        study = old.study()
        checksums = {(r.record.run_id, e.epoch): old.checkpoint_checksum(r.record.run_id, e.epoch)
                     for r in found.runs for e in r.epochs}  # fmt: skip
    with Store.in_dir(new) as store:
        store.init_study(study.name, study.config, meta=study.meta)
        store.add_runs([RunSpec(r.record.run_id, r.record.arm, r.record.scheme, r.record.seed) for r in found.runs])
        for run in found.runs:
            _copy_run(store, run, checksums, Path(folder), new)
    log.info("salvaged %d runs of %s into %s", len(found.runs), folder, new)
    return found


def _copy_run(store: Store, run: RunHealth, checksums: dict[tuple[str, int], str | None], old: Path, new: Path) -> None:
    """One run into the new store: all of it when intact, else only what a resume needs to start it again."""
    record = run.record
    if not run.rows_intact:
        return  # pending from epoch 0; its diagnosis at initialization is computed again
    for epoch, data in run.diagnoses:
        store.record_diagnostics(record.run_id, epoch, data)
    for e in run.epochs:
        sha = checksums.get((record.run_id, e.epoch))
        store.record_epochs([e], checksums={record.run_id: sha} if sha else None)
    if record.status == "diverged":
        store.set_status(record.run_id, "diverged", message=record.message, diverged_epoch=record.diverged_epoch)
    if record.test_metrics is not None and record.status in COMPLETE:
        store.record_test(record.run_id, record.test_metrics, wall_time_s=record.wall_time_s or 0.0)
    if record.status not in COMPLETE and record.last_epoch > 0:
        source = checkpoints.path(old, record.run_id, record.last_epoch)
        if source.is_file():
            target = checkpoints.path(new, record.run_id, record.last_epoch)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
