"""The Store: one SQLite file per study folder (``study.sqlite``) that holds the study, its runs and every epoch.

A runner process is the single writer while a study runs; the report and the CLI read the same file, also while it is
being written. The file is opened in WAL journal mode, so readers never block the writer and a crash (even
``SIGKILL``) can lose only the transaction in flight, never corrupt what was committed. Every write method is one
transaction that is committed before the method returns; :meth:`Store.record_epochs` writes one epoch of a whole
population (every run's metrics and layer statistics) in a single transaction, so an epoch is either stored complete
or not at all. :func:`study_lock` keeps a second runner out of a folder that is already being run.

Tables (schema version :attr:`Store.SCHEMA_VERSION`):

- ``schema_version(version)``: one row; a file with another version is refused with a message that says what to do.
- ``study``: one row: name, config (JSON), meta (JSON), ``created_at``, ``started_at``, ``finished_at`` (UTC ISO 8601).
- ``runs``: one row per run (``run_id`` such as ``"glorot_uniform/s0"``): arm, scheme (JSON), seed, status,
  ``last_epoch``, ``diverged_epoch``, message, test metrics (JSON), wall time, attempts.
- ``epochs``: primary key ``(run_id, epoch)``: train/validation loss and accuracy, wall time, ``extra`` (JSON).
- ``layer_stats``: primary key ``(run_id, epoch, layer)``: weight and gradient norms, in the model's layer order.
- ``diagnostics``: primary key ``(run_id, epoch)``: a free-form JSON payload (epoch 0 is "at initialization").

Floats round-trip exactly. Finite values and ±inf are stored in ``REAL`` columns, which hold IEEE doubles (SQL
aggregates and comparisons work on them directly). Two values cannot live in a ``REAL`` column: SQLite turns NaN into
``NULL`` and ``-0.0`` into ``0.0``. For those the ``REAL`` column holds ``NULL`` (NaN) or ``0.0`` (-0.0) and the row's
``special`` column, a JSON object, names the field and its value, e.g. ``{"val_loss": "nan"}``; a ``NULL`` without an
entry in ``special`` is a missing value (``None``). In SQL, ``WHERE val_loss IS NOT NULL`` therefore selects the rows
with a number. JSON columns (config, scheme, meta, metrics, ``extra``, diagnostics) are written by
:func:`json.dumps` with sorted keys; its ``NaN``/``Infinity`` tokens and ``repr``-exact floats round-trip through
:func:`json.loads`. :meth:`Store.export_json` writes strict JSON instead, with non-finite floats as the strings
``"NaN"``, ``"Infinity"`` and ``"-Infinity"``; :meth:`Store.export_csv` writes floats with ``repr`` (``nan``,
``inf``, ``-inf``), which :func:`float` and pandas read back exactly.
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import numbers
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Literal, NoReturn, get_args

from initlab.checks import check_choice, check_int, check_nonnegative, did_you_mean

try:  # POSIX only; on other systems study_lock degrades to a warning.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

__all__ = [
    "DB_FILENAME",
    "LOCK_FILENAME",
    "RUN_STATUSES",
    "EpochRecord",
    "LayerStat",
    "RunRecord",
    "RunSpec",
    "RunStatus",
    "Store",
    "StudyRecord",
    "environment_meta",
    "study_lock",
]

DB_FILENAME = "study.sqlite"
LOCK_FILENAME = ".lock"

RunStatus = Literal["pending", "running", "finished", "diverged", "failed"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)

# SQLite waits this long for another connection's write lock before giving up with "database is locked".
_BUSY_TIMEOUT_S = 30.0
# SQLite INTEGER is a signed 64-bit integer.
_MAX_SQLITE_INT = 2**63 - 1

_SCHEMA = """
CREATE TABLE schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE study (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,
    meta        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE TABLE runs (
    run_id         TEXT PRIMARY KEY,
    arm            TEXT NOT NULL,
    scheme         TEXT NOT NULL,
    seed           INTEGER NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'running', 'finished', 'diverged', 'failed')),
    last_epoch     INTEGER NOT NULL DEFAULT 0,
    diverged_epoch INTEGER,
    message        TEXT,
    test_metrics   TEXT,
    wall_time_s    REAL,
    attempts       INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE epochs (
    run_id      TEXT NOT NULL REFERENCES runs (run_id),
    epoch       INTEGER NOT NULL CHECK (epoch >= 1),
    train_loss  REAL,
    train_acc   REAL,
    val_loss    REAL,
    val_acc     REAL,
    wall_time_s REAL NOT NULL,
    extra       TEXT NOT NULL,
    special     TEXT,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE layer_stats (
    run_id      TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    layer       TEXT NOT NULL,
    weight_norm REAL,
    grad_norm   REAL,
    special     TEXT,
    PRIMARY KEY (run_id, epoch, layer),
    UNIQUE (run_id, epoch, position),
    FOREIGN KEY (run_id, epoch) REFERENCES epochs (run_id, epoch)
);
CREATE TABLE diagnostics (
    run_id  TEXT NOT NULL REFERENCES runs (run_id),
    epoch   INTEGER NOT NULL CHECK (epoch >= 0),
    payload TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
"""

_EPOCH_FLOATS = ("train_loss", "train_acc", "val_loss", "val_acc")
_EPOCH_OPTIONAL = frozenset({"val_loss", "val_acc"})
_RUN_COLUMNS = (
    "run_id", "arm", "seed", "status", "last_epoch", "diverged_epoch", "attempts", "wall_time_s", "message", "scheme",
)  # fmt: skip
_EPOCH_COLUMNS = ("run_id", "arm", "seed", "epoch", *_EPOCH_FLOATS, "wall_time_s")
_LAYER_COLUMNS = ("run_id", "arm", "seed", "epoch", "layer", "weight_norm", "grad_norm")


# -- records -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyRecord:
    """The study row. Timestamps are UTC ISO 8601 strings; ``duration_s`` spans first start to last finish."""

    name: str
    config: dict[str, Any]
    # Where and with what it ran: initlab/torch/python versions, machine, CPU, hostname, device (environment_meta()).
    meta: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration_s: float | None


@dataclass(frozen=True)
class RunSpec:
    """What a run is: an arm (a labelled scheme) trained with one seed."""

    run_id: str  # unique in the study, e.g. "glorot_uniform/s0"
    arm: str  # the arm's label, shared by its seeds
    scheme: dict[str, Any]  # the arm's JSON-serializable config, so the run can be re-created from the record
    seed: int


@dataclass(frozen=True)
class RunRecord:
    """A run as stored: its spec and its progress."""

    run_id: str
    arm: str
    scheme: dict[str, Any]
    seed: int
    status: RunStatus
    last_epoch: int  # the highest epoch stored; 0 before the first
    diverged_epoch: int | None
    message: str | None  # why it failed or diverged, in words
    test_metrics: dict[str, float] | None  # None until record_test
    wall_time_s: float | None  # the whole run's wall time, from record_test
    attempts: int  # retries recorded with bump_attempts


@dataclass(frozen=True)
class LayerStat:
    """Norms of one layer's weight and of its gradient at the end of an epoch (NaN or inf when diverged)."""

    name: str
    weight_norm: float
    grad_norm: float | None  # None when the layer had no gradient


@dataclass(frozen=True)
class EpochRecord:
    """One run's metrics after one epoch. Losses and accuracies may be NaN or inf (a diverged run)."""

    run_id: str
    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    val_loss: float | None  # None when the study has no validation split
    val_acc: float | None
    wall_time_s: float  # this epoch's wall time; not compared when a stored epoch is written again
    layers: Sequence[LayerStat] = field(default_factory=list)
    extra: Mapping[str, float] = field(default_factory=dict)


# -- encoding ------------------------------------------------------------------------------------------------------
def _dumps(value: Any, what: str) -> str:
    """Canonical JSON (sorted keys, exact floats, NaN/Infinity tokens); ``what`` names the value in errors."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable (dicts, lists, str, numbers, bool, None): {exc}") from None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _real(name: str, value: object, *, optional: bool = False) -> float | None:
    """``value`` as a float (NaN and inf allowed), or None when ``optional``; rejects bools and non-numbers."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        allowed = "a real number or None" if optional else "a real number"
        raise TypeError(f"{name} must be {allowed}, got {value!r} of type {type(value).__name__}.")
    return float(value)


def _encode_floats(values: Mapping[str, float | None]) -> tuple[list[float | None], str | None]:
    """Column values plus the ``special`` JSON for the values a REAL column cannot hold (NaN, -0.0)."""
    columns: list[float | None] = []
    special: dict[str, str] = {}
    for name, v in values.items():
        if v is not None and math.isnan(v):
            special[name] = "nan"
            columns.append(None)
        elif v == 0.0 and math.copysign(1.0, v) < 0:  # type: ignore[arg-type]
            special[name] = "-0.0"
            columns.append(0.0)
        else:
            columns.append(v)
    return columns, (json.dumps(special, sort_keys=True) if special else None)


def _decode_float(name: str, stored: float | None, special: Mapping[str, str]) -> float | None:
    if name in special:
        return float(special[name])
    return None if stored is None else float(stored)


def _strict_json(value: Any) -> Any:
    """A copy of ``value`` with non-finite floats as the strings "NaN", "Infinity", "-Infinity" (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact form; nan, inf and -inf read back with float()
    if isinstance(value, (dict, list)):
        return _dumps(value, "value")
    return str(value)


def _utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix or "(config)": value}


def _config_diff(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 5) -> str:
    """The settings that differ, as ``key: old -> new`` items, at most ``limit`` of them."""
    a, b = _flatten(old), _flatten(new)
    missing = object()

    def show(d: dict[str, Any], k: str) -> str:
        return repr(d[k]) if k in d else "(absent)"

    keys = sorted(k for k in set(a) | set(b) if a.get(k, missing) != b.get(k, missing))
    items = [f"{k}: {show(a, k)} -> {show(b, k)}" for k in keys[:limit]]
    if len(keys) > limit:
        items.append(f"and {len(keys) - limit} more")
    return "; ".join(items)


# -- the store -----------------------------------------------------------------------------------------------------
class Store:
    """The SQLite database of one study: its settings, its runs, every epoch's metrics and per-layer statistics.

    Open it with ``Store(path)`` or ``Store.in_dir(study_dir)`` and close it (or use ``with``). ``readonly=True``
    opens an existing file for reading only (the report and the CLI), which never blocks the writer. Every write is
    one transaction, committed before the method returns. Floats round-trip exactly, NaN and inf included (see the
    module docstring for how non-finite values are stored).
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    def __init__(self, path: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = bool(readonly)
        self._conn: sqlite3.Connection | None = None
        if readonly and not self.path.is_file():
            raise FileNotFoundError(
                f"no study database at {self.path}; check the study folder (--out), or run the study first."
            )
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if readonly:
                conn = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None
                )
            else:
                conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise ValueError(f"cannot open the study database {self.path}: {exc}.") from exc
        self._conn = conn
        try:
            self._setup(conn)
        except BaseException:
            conn.close()
            self._conn = None
            raise

    @classmethod
    def in_dir(cls, study_dir: str | os.PathLike[str], *, readonly: bool = False) -> Store:
        """Open the store of the study folder ``study_dir`` (``study_dir / "study.sqlite"``)."""
        return cls(Path(study_dir) / DB_FILENAME, readonly=readonly)

    def _setup(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if self.readonly:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                self._check_schema(conn, create=False)
                return
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise ValueError(f"could not switch {self.path} to WAL journal mode (got {mode!r}).")
            # FULL makes every commit durable across power loss too; commits are one per population epoch, so cheap.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._check_schema(conn, create=True)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"{self.path} is not a readable initlab study database (SQLite says: {exc}). Point to the "
                f"{DB_FILENAME} of a study folder, or use a new --out folder for a new study."
            ) from exc

    def _check_schema(self, conn: sqlite3.Connection, *, create: bool) -> None:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "schema_version" not in tables:
            if tables:
                raise ValueError(
                    f"{self.path} is a SQLite database but not an initlab study store (it has no schema_version "
                    f"table; its tables are {sorted(tables)}). Use a new --out folder."
                )
            if not create:
                raise ValueError(f"{self.path} is an empty database, not an initlab study store; run the study first.")
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (self.SCHEMA_VERSION,))
            logger.debug("created study store %s (schema %d)", self.path, self.SCHEMA_VERSION)
            return
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        version = None if row is None else row[0]
        if version == self.SCHEMA_VERSION:
            return
        if isinstance(version, int) and version > self.SCHEMA_VERSION:
            raise ValueError(
                f"{self.path} was written by a newer initlab (store schema {version}; this initlab reads schema "
                f"{self.SCHEMA_VERSION}). Upgrade initlab (pip install -U initlab) to open it."
            )
        raise ValueError(
            f"{self.path} has store schema {version!r}, but this initlab reads schema {self.SCHEMA_VERSION} and "
            "cannot convert it. Open it with the initlab version that wrote it (export it with `export_csv`/"
            "`export_json` there), or start the study again in a new --out folder."
        )

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
        config_json = _dumps(dict(config), "config")
        meta_json = _dumps(dict(meta), "meta")
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
                diff = _config_diff(json.loads(stored_config), json.loads(config_json))
                raise ValueError(
                    f"the folder {self.path.parent} holds another study ({stored_name!r}) whose settings differ "
                    f"({diff}). Use a new --out folder for a new study, or run with the same settings to resume it."
                )
            if stored_name != name:
                logger.warning(
                    "study %s is stored as %r; keeping that name instead of %r", self.path, stored_name, name
                )

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
        return StudyRecord(name, _loads(config), _loads(meta), created_at, started_at, finished_at, duration)

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
            rows.append((spec.run_id, spec.arm, _dumps(dict(spec.scheme), f"scheme of run {spec.run_id!r}"), seed))
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
            _loads(scheme),
            seed,
            status,
            last_epoch,
            diverged_epoch,
            message,
            _loads(metrics),
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
            clean[k] = _real(f"test metric {k!r}", v)  # type: ignore[assignment]
        wall = check_nonnegative("wall_time_s", wall_time_s)
        with self._write() as conn:
            self._require_run(conn, run_id)
            conn.execute(
                "UPDATE runs SET test_metrics = ?, wall_time_s = ?, "
                "status = CASE WHEN status = 'diverged' THEN status ELSE 'finished' END WHERE run_id = ?",
                (_dumps(clean, "metrics"), wall, run_id),
            )

    # -- epochs --------------------------------------------------------------------------------------------------
    @staticmethod
    def _encode_epoch(rec: EpochRecord) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        """The ``epochs`` row (without run_id and epoch) and the ``layer_stats`` rows, exactly as stored."""
        where = f"run {rec.run_id!r} epoch {rec.epoch}"
        values = {k: _real(f"{k} of {where}", getattr(rec, k), optional=k in _EPOCH_OPTIONAL) for k in _EPOCH_FLOATS}
        columns, special = _encode_floats(values)
        wall = check_nonnegative(f"wall_time_s of {where}", rec.wall_time_s)
        if not isinstance(rec.extra, Mapping):
            raise TypeError(f"extra of {where} must be a dict of str to float, got {type(rec.extra).__name__}.")
        extra: dict[str, float] = {}
        for k, v in rec.extra.items():
            if not isinstance(k, str):
                raise TypeError(f"extra keys of {where} must be strings, got {k!r}.")
            extra[k] = _real(f"extra[{k!r}] of {where}", v)  # type: ignore[assignment]
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
            cols, spec = _encode_floats(
                {
                    "weight_norm": _real(f"weight_norm of layer {stat.name!r} in {where}", stat.weight_norm),
                    "grad_norm": _real(f"grad_norm of layer {stat.name!r} in {where}", stat.grad_norm, optional=True),
                }
            )
            layers.append((position, stat.name, *cols, spec))
        return (*columns, wall, _dumps(extra, f"extra of {where}"), special), layers

    def record_epochs(self, rows: Sequence[EpochRecord]) -> None:
        """Store epochs (typically one epoch of every run in a population) in one transaction.

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

    def epochs(self, run_id: str | None = None) -> list[EpochRecord]:
        """Stored epochs with their layer statistics, of one run or of all, ordered by run (as added) then epoch."""
        conn = self.conn
        where, args = "", ()
        if run_id is not None:
            self._require_run(conn, run_id)
            where, args = "WHERE e.run_id = ?", (run_id,)
        rows = conn.execute(
            "SELECT e.run_id, e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.wall_time_s, e.extra, "
            f"e.special FROM epochs e JOIN runs r ON r.run_id = e.run_id {where} ORDER BY r.rowid, e.epoch",
            args,
        ).fetchall()
        layers: dict[tuple[str, int], list[LayerStat]] = {}
        for rid, epoch, stat in self.layer_stats(run_id):
            layers.setdefault((rid, epoch), []).append(stat)
        out = []
        for rid, epoch, tl, ta, vl, va, wall, extra, special in rows:
            sp = _loads(special) or {}
            out.append(
                EpochRecord(
                    run_id=rid,
                    epoch=epoch,
                    train_loss=_decode_float("train_loss", tl, sp),  # type: ignore[arg-type]
                    train_acc=_decode_float("train_acc", ta, sp),  # type: ignore[arg-type]
                    val_loss=_decode_float("val_loss", vl, sp),
                    val_acc=_decode_float("val_acc", va, sp),
                    wall_time_s=wall,
                    layers=layers.get((rid, epoch), []),
                    extra=_loads(extra),
                )
            )
        return out

    def layer_stats(self, run_id: str | None = None, *, layer: str | None = None) -> list[tuple[str, int, LayerStat]]:
        """``(run_id, epoch, LayerStat)`` for one run or all, optionally one layer; by run, epoch, layer order."""
        conn = self.conn
        clauses, args = [], []
        if run_id is not None:
            self._require_run(conn, run_id)
            clauses.append("s.run_id = ?")
            args.append(run_id)
        if layer is not None:
            clauses.append("s.layer = ?")
            args.append(layer)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = conn.execute(
            "SELECT s.run_id, s.epoch, s.layer, s.weight_norm, s.grad_norm, s.special FROM layer_stats s "
            f"JOIN runs r ON r.run_id = s.run_id {where} ORDER BY r.rowid, s.epoch, s.position",
            args,
        ).fetchall()
        out = []
        for rid, epoch, name, w, g, special in rows:
            sp = _loads(special) or {}
            stat = LayerStat(name, _decode_float("weight_norm", w, sp), _decode_float("grad_norm", g, sp))  # type: ignore[arg-type]
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
        text = _dumps(dict(payload), f"diagnostics payload of run {run_id!r} epoch {epoch}")
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
        conn = self.conn
        where, args = "", ()
        if run_id is not None:
            self._require_run(conn, run_id)
            where, args = "WHERE d.run_id = ?", (run_id,)
        rows = conn.execute(
            f"SELECT d.run_id, d.epoch, d.payload FROM diagnostics d JOIN runs r ON r.run_id = d.run_id {where} "
            "ORDER BY r.rowid, d.epoch",
            args,
        ).fetchall()
        return [(rid, epoch, json.loads(payload)) for rid, epoch, payload in rows]

    # -- export --------------------------------------------------------------------------------------------------
    def export_csv(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """Write ``runs.csv``, ``epochs.csv`` and ``layers.csv`` into ``out_dir``; return their paths.

        Test metrics become ``test_<name>`` columns of runs.csv and ``extra`` entries ``extra_<name>`` columns of
        epochs.csv; floats are written exactly (``repr``), non-finite ones as ``nan``, ``inf``, ``-inf``; a missing
        value is an empty cell.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        runs = self.runs()
        by_id = {r.run_id: r for r in runs}
        run_rows = []
        for r in runs:
            row = {k: getattr(r, k) for k in ("run_id", "arm", "seed", "status", "last_epoch", "diverged_epoch")}
            row.update(attempts=r.attempts, wall_time_s=r.wall_time_s, message=r.message)
            row.update({f"test_{k}": v for k, v in sorted((r.test_metrics or {}).items())})
            run_rows.append({**row, "scheme": r.scheme})
        epochs = self.epochs()
        epoch_rows = []
        for e in epochs:
            row = {"run_id": e.run_id, "arm": by_id[e.run_id].arm, "seed": by_id[e.run_id].seed, "epoch": e.epoch}
            row.update({k: getattr(e, k) for k in (*_EPOCH_FLOATS, "wall_time_s")})
            epoch_rows.append({**row, **{f"extra_{k}": v for k, v in sorted(e.extra.items())}})
        layer_rows = [
            {"run_id": rid, "arm": by_id[rid].arm, "seed": by_id[rid].seed, "epoch": epoch, "layer": s.name,
             "weight_norm": s.weight_norm, "grad_norm": s.grad_norm}
            for rid, epoch, s in self.layer_stats()
        ]  # fmt: skip
        paths = [
            _write_csv(out / "runs.csv", run_rows, _RUN_COLUMNS),
            _write_csv(out / "epochs.csv", epoch_rows, _EPOCH_COLUMNS),
            _write_csv(out / "layers.csv", layer_rows, _LAYER_COLUMNS),
        ]
        logger.info("exported %d runs and %d epochs of %s to %s", len(runs), len(epochs), self.path, out)
        return paths

    def export_json(self, path: str | os.PathLike[str]) -> Path:
        """Write one strict JSON document with the study, runs (with test metrics), epochs (with layer statistics)
        and diagnostics; non-finite floats are written as the strings "NaN", "Infinity" and "-Infinity"."""
        try:
            study: dict[str, Any] | None = _asdict(self.study())
        except ValueError:
            study = None
        doc = {
            "schema_version": self.SCHEMA_VERSION,
            "study": study,
            "runs": [_asdict(r) for r in self.runs()],
            "epochs": [_asdict(e) for e in self.epochs()],
            "diagnostics": [{"run_id": r, "epoch": e, "payload": p} for r, e, p in self.diagnostics()],
        }
        text = json.dumps(_strict_json(doc), indent=1, sort_keys=True, allow_nan=False)
        out = _write_atomic(Path(path), lambda f: f.write(text + "\n"))
        logger.info("exported %s to %s", self.path, out)
        return out


def _asdict(record: Any) -> dict[str, Any]:
    """A dataclass record as plain dicts and lists (layers included)."""
    out: dict[str, Any] = {}
    for name in record.__dataclass_fields__:
        value = getattr(record, name)
        if name == "layers":
            value = [{"name": s.name, "weight_norm": s.weight_norm, "grad_norm": s.grad_norm} for s in value]
        elif isinstance(value, Mapping):
            value = dict(value)
        out[name] = value
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]], fixed: Sequence[str]) -> Path:
    """Write ``rows`` as CSV: the ``fixed`` columns (always present, in order), then any other keys sorted."""
    others = sorted({k for row in rows for k in row} - set(fixed))
    header = [*fixed, *others]
    # Keep the wide JSON scheme column last.
    if "scheme" in header:
        header.remove("scheme")
        header.append("scheme")

    def write(f: Any) -> None:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([_csv_cell(row.get(k)) for k in header] for row in rows)

    return _write_atomic(path, write)


def _write_atomic(path: Path, write: Any) -> Path:
    """Write a text file through a temporary file and a rename, so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


# -- study lock ----------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def study_lock(study_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold an exclusive lock on ``study_dir`` while a study runs; yields the lock file's path.

    Uses ``fcntl.flock`` (non-blocking) on ``study_dir/.lock`` and writes this process's pid into it. If another
    process holds the lock, raises ``RuntimeError`` naming that process. The operating system drops the lock when the
    holder exits, even on ``SIGKILL``, so a stale lock file never blocks a resume.
    """
    directory = Path(study_dir)
    directory.mkdir(parents=True, exist_ok=True)
    lock_path = directory / LOCK_FILENAME
    if fcntl is None:  # pragma: no cover - Windows
        logger.warning("file locks are not available on this system; nothing stops two runners in %s", directory)
        yield lock_path
        return
    # "a+" so that opening does not erase the pid written by the process that holds the lock.
    with open(lock_path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            pid = f.read().strip() or "unknown"
            raise RuntimeError(
                f"study {directory} is already being run by another process (pid {pid}); wait for it to finish or "
                "stop it, or use another --out folder."
            ) from None
        try:
            f.seek(0)
            f.truncate()
            f.write(f"{os.getpid()}\n")
            f.flush()
            yield lock_path
        finally:
            f.seek(0)
            f.truncate()
            f.flush()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


# -- environment ---------------------------------------------------------------------------------------------------
def environment_meta(*, device: str | None = None) -> dict[str, Any]:
    """What ``init_study(meta=...)`` records: versions, machine, CPU, hostname and the device a study runs on."""
    import platform
    import socket
    from importlib.metadata import PackageNotFoundError, version

    try:
        initlab_version = version("initlab")
    except PackageNotFoundError:  # a source tree that was not installed
        initlab_version = "0.0.0+unknown"
    meta: dict[str, Any] = {
        "initlab": initlab_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        meta["torch"] = None
    else:
        meta["torch"] = torch.__version__
        meta["torch_threads"] = torch.get_num_threads()
        if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
            meta["device_name"] = torch.cuda.get_device_name(torch.device(device))
    if device is not None:
        meta["device"] = str(device)
    return meta


def _cpu_name() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else what ``platform`` knows)."""
    import platform

    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
