"""The Store: one SQLite file per study folder (``study.sqlite``) that holds the study, its runs and every epoch.

A runner process is the single writer while a study runs; the report and the CLI read the same file, also while it is
being written (WAL journal mode, see :mod:`initlab.store.schema`). Every write method is one transaction that is
committed before the method returns; :meth:`Store.record_epochs` writes one epoch of a whole population (every run's
metrics and layer statistics) in a single transaction, so an epoch is either stored complete or not at all; the
runner holds :func:`initlab.studies.lock.study_lock` while it writes, so a folder has one writer. Writing
what is already stored is a no-op and writing something else in its place an error, so a resumed study is
idempotent. How values are encoded is in :mod:`initlab.store.codec`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from initlab.checks import check_choice, check_int, check_nonnegative, did_you_mean
from initlab.store import export
from initlab.store.codec import canonical_json, config_diff, decode_float, encode_floats, parse_json, real
from initlab.store.records import (
    EPOCH_FLOATS,
    EPOCH_OPTIONAL,
    RUN_STATUSES,
    EpochRecord,
    LayerStat,
    RunRecord,
    RunSpec,
    RunStatus,
    StudyRecord,
)
from initlab.store.schema import DB_FILENAME, SCHEMA_VERSION, open_connection

__all__ = ["Store"]

logger = logging.getLogger(__name__)

# SQLite INTEGER is a signed 64-bit integer.
_MAX_SQLITE_INT = 2**63 - 1


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Store:
    """The SQLite database of one study: its settings, its runs, every epoch's metrics and per-layer statistics.

    Open it with ``Store(path)`` or ``Store.in_dir(study_dir)`` and close it (or use ``with``). ``readonly=True``
    opens an existing file for reading only (the report and the CLI), which never blocks the writer. Every write is
    one transaction, committed before the method returns. Floats round-trip exactly, NaN and inf included (see
    :mod:`initlab.store.codec` for how non-finite values are stored).
    """

    SCHEMA_VERSION: ClassVar[int] = SCHEMA_VERSION

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = bool(readonly)
        self._conn: sqlite3.Connection | None = open_connection(self.path, readonly=self.readonly)

    @classmethod
    def in_dir(cls, study_dir: str | os.PathLike[str], *, readonly: bool = False) -> Store:
        """Open the store of the study folder ``study_dir`` (``study_dir / "study.sqlite"``)."""
        return cls(Path(study_dir) / DB_FILENAME, readonly=readonly)

    # -- connection ----------------------------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        """The open connection; raises if the store was closed."""
        if self._conn is None:
            raise ValueError(f"the store {self.path} is closed; open it again with Store(...) or Store.in_dir(...).")
        return self._conn

    def close(self) -> None:
        """Close the connection (idempotent). Everything written is already committed."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else ("read-only" if self.readonly else "open")
        return f"Store({str(self.path)!r}, {state})"

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: ``BEGIN IMMEDIATE`` takes the write lock up front; commit, or roll back on error."""
        if self.readonly:
            raise PermissionError(f"the store {self.path} was opened read-only; open it with readonly=False to write.")
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- study ---------------------------------------------------------------------------------------------------
    def init_study(self, name: str, config: Mapping[str, Any], *, meta: Mapping[str, Any]) -> None:
        """Record the study on first call; later calls with the same config do nothing.

        ``config`` is stored exactly, as JSON with sorted keys (tuples become lists). A later call with a different
        config raises ``ValueError``: the folder holds another study. The name and meta of the first call are kept
        (a resumed study may run on another machine; a differing name is logged).
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"name must be a non-empty string, got {name!r}.")
        if not isinstance(config, Mapping):
            raise TypeError(f"config must be a dict, got {type(config).__name__}.")
        if not isinstance(meta, Mapping):
            raise TypeError(f"meta must be a dict, got {type(meta).__name__}.")
        config_json = canonical_json(dict(config), "config")
        meta_json = canonical_json(dict(meta), "meta")
        with self._write() as conn:
            row = conn.execute("SELECT name, config FROM study WHERE id = 1").fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO study (id, name, config, meta, created_at) VALUES (1, ?, ?, ?, ?)",
                    (name, config_json, meta_json, _utcnow()),
                )
                return
            stored_name, stored_config = row
            if stored_config != config_json:
                diff = config_diff(parse_json(stored_config), parse_json(config_json))
                raise ValueError(
                    f"the folder {self.path.parent} holds another study ({stored_name!r}) whose settings differ "
                    f"({diff}). Use a new --out folder for a new study, or run with the same settings to resume it."
                )
            if stored_name != name:
                logger.warning(
                    "study %s is stored as %r; keeping that name instead of %r", self.path, stored_name, name
                )

    def has_study(self) -> bool:
        """Whether ``init_study`` recorded a study here."""
        return self.conn.execute("SELECT 1 FROM study WHERE id = 1").fetchone() is not None

    def study(self) -> StudyRecord:
        """The study row; raises ``ValueError`` if ``init_study`` was never called."""
        row = self.conn.execute(
            "SELECT name, config, meta, created_at, started_at, finished_at FROM study WHERE id = 1"
        ).fetchone()
        if row is None:
            raise ValueError(f"{self.path} holds no study yet; the runner records it with init_study first.")
        name, config, meta, created_at, started_at, finished_at = row
        duration = None
        if started_at is not None and finished_at is not None:
            duration = (datetime.fromisoformat(finished_at) - datetime.fromisoformat(started_at)).total_seconds()
        return StudyRecord(name, parse_json(config), parse_json(meta), created_at, started_at, finished_at, duration)

    def mark_study(self, *, started: bool = False, finished: bool = False) -> None:
        """Record that the study started (first start is kept; a finish mark is cleared) or finished (now)."""
        if not (started or finished):
            raise ValueError("mark_study needs started=True or finished=True.")
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM study WHERE id = 1").fetchone() is None:
                raise ValueError(f"{self.path} holds no study yet; call init_study before mark_study.")
            now = _utcnow()
            if started:
                conn.execute(
                    "UPDATE study SET started_at = COALESCE(started_at, ?), finished_at = NULL WHERE id = 1", (now,)
                )
            if finished:
                conn.execute("UPDATE study SET finished_at = ? WHERE id = 1", (now,))

    # -- runs ----------------------------------------------------------------------------------------------------
    def add_runs(self, runs: Sequence[RunSpec]) -> None:
        """Register runs as ``pending``, all in one transaction.

        Adding a run that is stored with the same arm, scheme and seed does nothing (a resumed study re-adds its
        runs); the same ``run_id`` with a different spec raises ``ValueError`` and nothing of the batch is stored.
        """
        rows = []
        for spec in runs:
            if not isinstance(spec, RunSpec):
                raise TypeError(f"add_runs takes RunSpec objects, got {type(spec).__name__}.")
            if not isinstance(spec.run_id, str) or not spec.run_id:
                raise TypeError(f"run_id must be a non-empty string, got {spec.run_id!r}.")
            if not isinstance(spec.arm, str) or not spec.arm:
                raise TypeError(f"arm of run {spec.run_id!r} must be a non-empty string, got {spec.arm!r}.")
            if not isinstance(spec.scheme, Mapping):
                raise TypeError(f"scheme of run {spec.run_id!r} must be a dict, got {type(spec.scheme).__name__}.")
            seed = check_int(f"seed of run {spec.run_id!r}", spec.seed, minimum=0)
            if seed > _MAX_SQLITE_INT:
                raise ValueError(f"seed of run {spec.run_id!r} is {seed}; the store holds seeds below 2**63.")
            rows.append(
                (spec.run_id, spec.arm, canonical_json(dict(spec.scheme), f"scheme of run {spec.run_id!r}"), seed)
            )
        with self._write() as conn:
            for run_id, arm, scheme, seed in rows:
                old = conn.execute("SELECT arm, scheme, seed FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if old is None:
                    conn.execute(
                        "INSERT INTO runs (run_id, arm, scheme, seed) VALUES (?, ?, ?, ?)", (run_id, arm, scheme, seed)
                    )
                elif tuple(old) != (arm, scheme, seed):
                    raise ValueError(
                        f"run {run_id!r} is stored as arm={old[0]!r}, seed={old[2]}, scheme={old[1]}, but is now "
                        f"arm={arm!r}, seed={seed}, scheme={scheme}. This folder holds another study; use a new "
                        "--out folder, or the same settings to resume it."
                    )

    def runs(self) -> list[RunRecord]:
        """Every run, in the order they were added."""
        rows = self.conn.execute(
            "SELECT run_id, arm, scheme, seed, status, last_epoch, diverged_epoch, message, test_metrics, "
            "wall_time_s, attempts FROM runs ORDER BY rowid"
        ).fetchall()
        return [self._run_record(r) for r in rows]

    def run(self, run_id: str) -> RunRecord:
        """One run; raises ``ValueError`` (with the closest run ids) if it is unknown."""
        row = self.conn.execute(
            "SELECT run_id, arm, scheme, seed, status, last_epoch, diverged_epoch, message, test_metrics, "
            "wall_time_s, attempts FROM runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            self._unknown_run(self.conn, run_id)
        return self._run_record(row)

    @staticmethod
    def _run_record(row: Sequence[Any]) -> RunRecord:
        run_id, arm, scheme, seed, status, last_epoch, diverged_epoch, message, metrics, wall, attempts = row
        return RunRecord(
            run_id,
            arm,
            parse_json(scheme),
            seed,
            status,
            last_epoch,
            diverged_epoch,
            message,
            parse_json(metrics),
            wall,
            attempts,
        )

    def _unknown_run(self, conn: sqlite3.Connection, run_id: object) -> NoReturn:
        known = [r[0] for r in conn.execute("SELECT run_id FROM runs")]
        hint = did_you_mean(run_id, known) if isinstance(run_id, str) else ""
        raise ValueError(f"unknown run {run_id!r} in {self.path}; register it with add_runs first.{hint}")

    def _require_run(self, conn: sqlite3.Connection, run_id: object) -> None:
        if (
            not isinstance(run_id, str)
            or conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None
        ):
            self._unknown_run(conn, run_id)

    def _select_by_run(
        self, table: str, columns: Sequence[str], order: Sequence[str], run_id: str | None, **equal: str | None
    ) -> list[Any]:
        """The ``columns`` of ``table``'s rows, of one run (which must exist) or of all, ordered by run (as added),
        then by the ``order`` columns; each ``equal`` column that is given a value other than None must equal it.

        The table and column names are this module's own constants; values are bound as parameters.
        """
        conn = self.conn
        if run_id is not None:
            self._require_run(conn, run_id)
        filters = {"run_id": run_id, **equal}
        clauses = [f"t.{column} = ?" for column, value in filters.items() if value is not None]
        args = [value for value in filters.values() if value is not None]
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        listed = ", ".join(f"t.{c}" for c in columns)
        ordered = ", ".join(f"t.{c}" for c in order)
        return conn.execute(
            f"SELECT {listed} FROM {table} t JOIN runs r ON r.run_id = t.run_id {where} ORDER BY r.rowid, {ordered}",
            args,
        ).fetchall()

    def set_status(
        self, run_id: str, status: RunStatus, *, message: str | None = None, diverged_epoch: int | None = None
    ) -> None:
        """Set a run's status; ``message`` and ``diverged_epoch`` replace the stored ones (None clears them).

        ``diverged_epoch`` is only allowed with ``status="diverged"``.
        """
        status = check_choice("status", status, RUN_STATUSES)  # type: ignore[assignment]
        if message is not None and not isinstance(message, str):
            raise TypeError(f"message must be a string or None, got {type(message).__name__}.")
        if diverged_epoch is not None:
            check_int("diverged_epoch", diverged_epoch, minimum=0)
            if status != "diverged":
                raise ValueError(f"diverged_epoch={diverged_epoch} only goes with status='diverged', not {status!r}.")
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                "UPDATE runs SET status = ?, message = ?, diverged_epoch = ? WHERE run_id = ?",
                (status, message, diverged_epoch, run_id),
            )

    def bump_attempts(self, run_id: str) -> None:
        """Count one more attempt (a retry) of ``run_id``."""
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute("UPDATE runs SET attempts = attempts + 1 WHERE run_id = ?", (run_id,))

    def record_test(self, run_id: str, metrics: Mapping[str, float], *, wall_time_s: float) -> None:
        """Store the final test metrics and the run's wall time, and mark the run ``finished``.

        A run marked ``diverged`` keeps that status (its test metrics are still stored). Calling it again replaces
        the metrics.
        """
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a dict of str to float, got {type(metrics).__name__}.")
        clean: dict[str, float] = {}
        for k, v in metrics.items():
            if not isinstance(k, str):
                raise TypeError(f"metric names must be strings, got {k!r}.")
            clean[k] = real(f"test metric {k!r}", v)  # type: ignore[assignment]
        wall = check_nonnegative("wall_time_s", wall_time_s)
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                "UPDATE runs SET test_metrics = ?, wall_time_s = ?, "
                "status = CASE WHEN status = 'diverged' THEN status ELSE 'finished' END WHERE run_id = ?",
                (canonical_json(clean, "metrics"), wall, run_id),
            )

    # -- epochs --------------------------------------------------------------------------------------------------
    @staticmethod
    def _encode_epoch(rec: EpochRecord) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        """The ``epochs`` row (without run_id and epoch) and the ``layer_stats`` rows, exactly as stored."""
        where = f"run {rec.run_id!r} epoch {rec.epoch}"
        values = {k: real(f"{k} of {where}", getattr(rec, k), optional=k in EPOCH_OPTIONAL) for k in EPOCH_FLOATS}
        columns, special = encode_floats(values)
        wall = check_nonnegative(f"wall_time_s of {where}", rec.wall_time_s)
        if not isinstance(rec.extra, Mapping):
            raise TypeError(f"extra of {where} must be a dict of str to float, got {type(rec.extra).__name__}.")
        extra: dict[str, float] = {}
        for k, v in rec.extra.items():
            if not isinstance(k, str):
                raise TypeError(f"extra keys of {where} must be strings, got {k!r}.")
            extra[k] = real(f"extra[{k!r}] of {where}", v)  # type: ignore[assignment]
        layers = []
        seen: set[str] = set()
        for position, stat in enumerate(rec.layers):
            if not isinstance(stat, LayerStat):
                raise TypeError(f"layers of {where} must be LayerStat objects, got {type(stat).__name__}.")
            if not isinstance(stat.name, str) or not stat.name:
                raise TypeError(f"layer names of {where} must be non-empty strings, got {stat.name!r}.")
            if stat.name in seen:
                raise ValueError(f"layer {stat.name!r} appears twice in {where}; layer names must be unique.")
            seen.add(stat.name)
            cols, spec = encode_floats(
                {
                    "weight_norm": real(f"weight_norm of layer {stat.name!r} in {where}", stat.weight_norm),
                    "grad_norm": real(f"grad_norm of layer {stat.name!r} in {where}", stat.grad_norm, optional=True),
                }
            )
            layers.append((position, stat.name, *cols, spec))
        return (*columns, wall, canonical_json(extra, f"extra of {where}"), special), layers

    def record_epochs(self, rows: Sequence[EpochRecord], *, checksums: Mapping[str, str] | None = None) -> None:
        """Store epochs (typically one epoch of every run in a population) in one transaction.

        ``checksums``: run id to the SHA-256 of the checkpoint the run wrote after this epoch, recorded with it (the
        newest write of a file wins: a resumed epoch rewrites its checkpoint).

        Each epoch's layer statistics are stored with it, so an epoch is either complete or absent. An epoch that is
        already stored is not stored twice: if its metrics, layer statistics and ``extra`` are identical (its wall
        time may differ) the row is skipped, which makes a resumed study idempotent; otherwise ``ValueError`` is
        raised and nothing of the batch is stored. A newly stored epoch raises the run's ``last_epoch`` and moves a
        ``pending`` or ``failed`` run to ``running``.
        """
        encoded = []
        for rec in rows:
            if not isinstance(rec, EpochRecord):
                raise TypeError(f"record_epochs takes EpochRecord objects, got {type(rec).__name__}.")
            check_int(f"epoch of run {rec.run_id!r}", rec.epoch, minimum=1)
            encoded.append((rec, *self._encode_epoch(rec)))
        with self._write() as conn:
            for run_id in {rec.run_id for rec, _, _ in encoded}:
                self._require_run(conn, run_id)
            for rec, row, layers in encoded:
                try:
                    conn.execute(
                        "INSERT INTO epochs (run_id, epoch, train_loss, train_acc, val_loss, val_acc, wall_time_s, "
                        "extra, special) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (rec.run_id, rec.epoch, *row),
                    )
                except sqlite3.IntegrityError as exc:
                    self._check_same_epoch(conn, rec, row, layers, exc)
                    continue
                conn.executemany(
                    "INSERT INTO layer_stats (run_id, epoch, position, layer, weight_norm, grad_norm, special) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(rec.run_id, rec.epoch, *layer) for layer in layers],
                )
                conn.execute(
                    "UPDATE runs SET last_epoch = MAX(last_epoch, ?), status = CASE WHEN status IN "
                    "('pending', 'failed') THEN 'running' ELSE status END WHERE run_id = ?",
                    (rec.epoch, rec.run_id),
                )
            for rec, _, _ in encoded:
                if checksums and rec.run_id in checksums:
                    conn.execute("INSERT OR REPLACE INTO checkpoints (run_id, epoch, sha256) VALUES (?, ?, ?)",
                                 (rec.run_id, rec.epoch, str(checksums[rec.run_id])))  # fmt: skip

    def _check_same_epoch(
        self,
        conn: sqlite3.Connection,
        rec: EpochRecord,
        row: tuple[Any, ...],
        layers: list[tuple[Any, ...]],
        exc: sqlite3.IntegrityError,
    ) -> None:
        """Return if the stored epoch equals the new one (wall time aside); else raise ``ValueError``."""
        stored = conn.execute(
            "SELECT train_loss, train_acc, val_loss, val_acc, wall_time_s, extra, special FROM epochs "
            "WHERE run_id = ? AND epoch = ?",
            (rec.run_id, rec.epoch),
        ).fetchone()
        stored_layers = conn.execute(
            "SELECT position, layer, weight_norm, grad_norm, special FROM layer_stats WHERE run_id = ? AND epoch = ? "
            "ORDER BY position",
            (rec.run_id, rec.epoch),
        ).fetchall()
        if stored is None:  # not a duplicate: some other constraint failed
            raise ValueError(f"cannot store run {rec.run_id!r} epoch {rec.epoch}: {exc}.") from exc
        # Column 4 is the wall time, which always differs when an epoch is trained again; the rest must be equal.
        same_row = (*stored[:4], *stored[5:]) == (*row[:4], *row[5:])
        if same_row and [tuple(s) for s in stored_layers] == layers:
            logger.debug("run %s epoch %d is already stored with the same values; skipped", rec.run_id, rec.epoch)
            return
        raise ValueError(
            f"run {rec.run_id!r} epoch {rec.epoch} is already stored with different values; an epoch is stored once. "
            "Resume the study from its stored state (the runner continues after the last stored epoch), or use a new "
            "--out folder."
        ) from exc

    def checkpoint_checksum(self, run_id: str, epoch: int) -> str | None:
        """The SHA-256 recorded for ``run_id``'s checkpoint after ``epoch``; None if none was recorded (an epoch
        stored without one, or a file written before checksums were kept)."""
        try:
            row = self.conn.execute(
                "SELECT sha256 FROM checkpoints WHERE run_id = ? AND epoch = ?", (run_id, epoch)
            ).fetchone()
        except sqlite3.OperationalError:  # a read-only schema-1 file without the table
            return None
        return None if row is None else str(row[0])

    def rollback(self, run_id: str, epoch: int, *, message: str) -> None:
        """Forget what ``run_id`` stored after ``epoch`` (epochs, layer statistics, diagnoses, checkpoint checksums,
        test metrics) and make it pending from ``epoch``, with ``message`` saying why: a run whose checkpoint was
        damaged continues from its last good one."""
        check_int("epoch", epoch, minimum=0)
        with self._write() as conn:
            self._require_run(conn, run_id)
            for table in ("layer_stats", "diagnostics", "checkpoints", "epochs"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ? AND epoch > ?", (run_id, epoch))
            conn.execute(
                "UPDATE runs SET last_epoch = ?, status = 'pending', message = ?, diverged_epoch = NULL, "
                "test_metrics = NULL, wall_time_s = NULL WHERE run_id = ?",
                (epoch, message, run_id),
            )

    def epochs(self, run_id: str | None = None) -> list[EpochRecord]:
        """Stored epochs with their layer statistics, of one run or of all, ordered by run (as added) then epoch."""
        columns = ("run_id", "epoch", *EPOCH_FLOATS, "wall_time_s", "extra", "special")
        rows = self._select_by_run("epochs", columns, ("epoch",), run_id)
        layers: dict[tuple[str, int], list[LayerStat]] = {}
        for rid, epoch, stat in self.layer_stats(run_id):
            layers.setdefault((rid, epoch), []).append(stat)
        out = []
        for rid, epoch, tl, ta, vl, va, wall, extra, special in rows:
            sp = parse_json(special) or {}
            out.append(
                EpochRecord(
                    run_id=rid,
                    epoch=epoch,
                    train_loss=decode_float("train_loss", tl, sp),  # type: ignore[arg-type]
                    train_acc=decode_float("train_acc", ta, sp),  # type: ignore[arg-type]
                    val_loss=decode_float("val_loss", vl, sp),
                    val_acc=decode_float("val_acc", va, sp),
                    wall_time_s=wall,
                    layers=layers.get((rid, epoch), []),
                    extra=parse_json(extra),
                )
            )
        return out

    def layer_stats(self, run_id: str | None = None, *, layer: str | None = None) -> list[tuple[str, int, LayerStat]]:
        """``(run_id, epoch, LayerStat)`` for one run or all, optionally one layer; by run, epoch, layer order."""
        columns = ("run_id", "epoch", "layer", "weight_norm", "grad_norm", "special")
        rows = self._select_by_run("layer_stats", columns, ("epoch", "position"), run_id, layer=layer)
        out = []
        for rid, epoch, name, w, g, special in rows:
            sp = parse_json(special) or {}
            stat = LayerStat(name, decode_float("weight_norm", w, sp), decode_float("grad_norm", g, sp))  # type: ignore[arg-type]
            out.append((rid, epoch, stat))
        return out

    # -- diagnostics ---------------------------------------------------------------------------------------------
    def record_diagnostics(self, run_id: str, epoch: int, payload: Mapping[str, Any]) -> None:
        """Store a free-form JSON ``payload`` for ``run_id`` at ``epoch`` (0 = at initialization).

        As with epochs, writing the same payload again does nothing and a different payload raises ``ValueError``.
        """
        check_int("epoch", epoch, minimum=0)
        if not isinstance(payload, Mapping):
            raise TypeError(f"payload must be a dict, got {type(payload).__name__}.")
        text = canonical_json(dict(payload), f"diagnostics payload of run {run_id!r} epoch {epoch}")
        with self._write() as conn:
            self._require_run(conn, run_id)
            try:
                conn.execute("INSERT INTO diagnostics (run_id, epoch, payload) VALUES (?, ?, ?)", (run_id, epoch, text))
            except sqlite3.IntegrityError as exc:
                old = conn.execute(
                    "SELECT payload FROM diagnostics WHERE run_id = ? AND epoch = ?", (run_id, epoch)
                ).fetchone()
                if old is not None and old[0] == text:
                    return
                raise ValueError(
                    f"diagnostics of run {run_id!r} at epoch {epoch} are already stored with a different payload."
                ) from exc

    def diagnostics(self, run_id: str | None = None) -> list[tuple[str, int, dict[str, Any]]]:
        """``(run_id, epoch, payload)`` for one run or all, ordered by run (as added) then epoch."""
        rows = self._select_by_run("diagnostics", ("run_id", "epoch", "payload"), ("epoch",), run_id)
        return [(rid, epoch, parse_json(payload)) for rid, epoch, payload in rows]

    # -- export --------------------------------------------------------------------------------------------------
    def export_csv(
        self, out_dir: str | os.PathLike[str], *, run_columns: export.RunColumns | None = None
    ) -> list[Path]:
        """Write ``runs.csv``, ``epochs.csv`` and ``layers.csv`` into ``out_dir``; return their paths.

        Test metrics become ``test_<name>`` columns of runs.csv and ``extra`` entries ``extra_<name>`` columns of
        epochs.csv; floats are written exactly (``repr``), non-finite ones as ``nan``, ``inf``, ``-inf``; a missing
        value is an empty cell. ``run_columns`` (per run id, ``{column: value}``: a sweep's axes) are written with
        every row of their run. See :func:`initlab.store.export.export_csv`.
        """
        return export.export_csv(self, out_dir, run_columns=run_columns)

    def export_json(self, path: str | os.PathLike[str], *, run_columns: export.RunColumns | None = None) -> Path:
        """Write one strict JSON document with the study, runs (with test metrics), epochs (with layer statistics)
        and diagnostics; non-finite floats are written as the strings "NaN", "Infinity" and "-Infinity".
        ``run_columns`` become keys of their runs. See :func:`initlab.store.export.export_json`."""
        return export.export_json(self, path, run_columns=run_columns)
