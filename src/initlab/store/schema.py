"""The tables of a study database, their version, and opening a connection that checks them.

Tables (schema version :data:`SCHEMA_VERSION`):

- ``schema_version(version)``: one row; a file with another version is refused with a message that says what to do.
- ``study``: one row: name, config (JSON), meta (JSON), ``created_at``, ``started_at``, ``finished_at`` (UTC ISO 8601).
- ``runs``: one row per run (``run_id`` such as ``"glorot_uniform/s0"``): arm, scheme (JSON), seed, status,
  ``last_epoch``, ``diverged_epoch``, message, test metrics (JSON), wall time, attempts.
- ``epochs``: primary key ``(run_id, epoch)``: train/validation loss and accuracy, wall time, ``extra`` (JSON).
- ``layer_stats``: primary key ``(run_id, epoch, layer)``: weight and gradient norms, in the model's layer order.
- ``diagnostics``: primary key ``(run_id, epoch)``: a free-form JSON payload (epoch 0 is "at initialization").
- ``checkpoints``: primary key ``(run_id, epoch)``: the SHA-256 of the checkpoint file a run wrote after that epoch,
  recorded with the epoch, so a resume can tell a damaged file. An addition to schema 1 that older initlab versions
  ignore; it is created in a schema-1 file that lacks it when the file is opened for writing.

The ``special`` columns of ``epochs`` and ``layer_stats`` hold the floats a ``REAL`` column cannot (NaN, -0.0); see
:mod:`initlab.store.codec`. A writable connection is switched to WAL journal mode, so readers never block the writer
and a crash (even ``SIGKILL``) can lose only the transaction in flight, never corrupt what was committed.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
from pathlib import Path

__all__ = [
    "BUSY_TIMEOUT_S",
    "DB_FILENAME",
    "SCHEMA",
    "SCHEMA_VERSION",
    "DamagedStoreError",
    "check_schema",
    "open_connection",
    "setup",
]

logger = logging.getLogger(__name__)

DB_FILENAME = "study.sqlite"
# Raise it (and add a conversion, or a message saying there is none) whenever SCHEMA changes.
SCHEMA_VERSION = 1
#: How many of SQLite's quick_check messages a damaged-store error quotes.
QUICK_CHECK_SHOWN = 3


class DamagedStoreError(ValueError):
    """A study database whose pages are damaged: refused for writing; ``initlab doctor`` salvages what is intact."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        folder = path.parent
        shown = "; ".join(problems[:QUICK_CHECK_SHOWN]) + (" ..." if len(problems) > QUICK_CHECK_SHOWN else "")
        super().__init__(
            f"the study database {path} is damaged (SQLite's quick_check: {shown}). Nothing was written to it. Run "
            f"`initlab doctor {folder}` to see what is intact, and `initlab doctor {folder} --salvage NEW_FOLDER` to "
            "copy it into a new study folder that resumes."
        )
        self.path, self.problems = path, problems


def quick_check(conn: sqlite3.Connection) -> list[str]:
    """SQLite's ``PRAGMA quick_check``: the problems it finds, ``[]`` for an intact database (it reads every page
    but does not cross-check indexes, so it is fast: a few ms for a study of thousands of epochs). A file that is
    not a database at all raises ``sqlite3.DatabaseError``."""
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        if str(getattr(exc, "sqlite_errorname", "")).startswith("SQLITE_CORRUPT"):
            return [str(exc)]  # too damaged to list the problems
        raise
    return [] if rows == ["ok"] else rows


# SQLite waits this long for another connection's write lock before giving up with "database is locked".
BUSY_TIMEOUT_S = 30.0

CHECKPOINTS_TABLE = """
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL REFERENCES runs (run_id),
    epoch  INTEGER NOT NULL CHECK (epoch >= 1),
    sha256 TEXT NOT NULL,
    PRIMARY KEY (run_id, epoch)
);
"""

SCHEMA = (
    """
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
    + CHECKPOINTS_TABLE
)


def open_connection(path: Path, *, readonly: bool) -> sqlite3.Connection:
    """A connection to the study database at ``path``, set up by :func:`setup` (created first unless ``readonly``).

    ``readonly`` opens an existing file with ``mode=ro``, which never blocks the writer. Errors say what the file is
    and what to do: ``FileNotFoundError`` for a missing file, ``ValueError`` for one that is not a study database.
    """
    if readonly and not path.is_file():
        raise FileNotFoundError(f"no study database at {path}; check the study folder (--out), or run the study first.")
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if readonly:
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
            )
        else:
            conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise ValueError(f"cannot open the study database {path}: {exc}.") from exc
    try:
        setup(conn, path, readonly=readonly)
    except (ValueError, OSError):
        conn.close()
        if readonly and not os.access(path.parent, os.W_OK):
            return _open_immutable(path)
        raise
    except BaseException:
        conn.close()
        raise
    return conn


def _open_immutable(path: Path) -> sqlite3.Connection:
    """A finished study on read-only media: a WAL database cannot be opened ``mode=ro`` without its shared-memory
    file, which nobody can create there, so it is opened ``immutable=1``: SQLite reads the file as it is, without
    locks, which is right when nothing can write to it."""
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None
    )
    try:
        setup(conn, path, readonly=True)
    except BaseException:
        conn.close()
        raise
    return conn


def setup(conn: sqlite3.Connection, path: Path, *, readonly: bool) -> None:
    """Set the connection's pragmas (busy timeout, foreign keys, WAL, full sync) and check or create the schema.

    ``path`` names the file in errors. Autocommit mode (``isolation_level=None``) is expected: the schema is created
    in one ``BEGIN IMMEDIATE`` transaction, so two writers opening a new file at once cannot both create it.
    """
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            check_schema(conn, path, create=False)
            return
        problems = quick_check(conn)
        if problems:
            raise DamagedStoreError(path, problems)
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise ValueError(f"could not switch {path} to WAL journal mode (got {mode!r}).")
        # FULL makes every commit durable across power loss too; commits are one per population epoch, so cheap.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            check_schema(conn, path, create=True)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.DatabaseError as exc:
        _raise_os_error(exc, path)
        raise ValueError(
            f"{path} is not a readable initlab study database (SQLite says: {exc}). Point to the "
            f"{DB_FILENAME} of a study folder, or use a new --out folder for a new study; if it is a study's database "
            f"that was damaged, `initlab doctor {path.parent}` says what can be salvaged."
        ) from exc


#: SQLite errors that are the file system's, not the file's: raised as OSError with the errno they mean.
_OS_ERRORS = {"SQLITE_FULL": errno.ENOSPC, "SQLITE_READONLY": errno.EROFS, "SQLITE_READONLY_DIRECTORY": errno.EROFS,
              "SQLITE_CANTOPEN": errno.EACCES, "SQLITE_IOERR": errno.EIO}  # fmt: skip


def _raise_os_error(exc: sqlite3.DatabaseError, path: Path) -> None:
    """Raise ``OSError`` (naming ``path``) when SQLite's error comes from the disk: full, read-only, not writable."""
    name = str(getattr(exc, "sqlite_errorname", ""))
    code = next((c for prefix, c in _OS_ERRORS.items() if name.startswith(prefix)), None)
    if code is not None:
        raise OSError(code, f"{os.strerror(code)} (SQLite: {exc})", str(path)) from exc


def check_schema(conn: sqlite3.Connection, path: Path, *, create: bool) -> None:
    """Accept a database of :data:`SCHEMA_VERSION`; create the tables in an empty one when ``create``; else raise.

    A foreign database, an empty one opened for reading, a newer schema and an older one are each refused with a
    ``ValueError`` that says what to do.
    """
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" not in tables:
        if tables:
            raise ValueError(
                f"{path} is a SQLite database but not an initlab study store (it has no schema_version "
                f"table; its tables are {sorted(tables)}). Use a new --out folder."
            )
        if not create:
            raise ValueError(f"{path} is an empty database, not an initlab study store; run the study first.")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        logger.debug("created study store %s (schema %d)", path, SCHEMA_VERSION)
        return
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    version = None if row is None else row[0]
    if version == SCHEMA_VERSION:
        if create and "checkpoints" not in tables:  # a file written before the table existed
            conn.execute(CHECKPOINTS_TABLE)
        return
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise ValueError(
            f"{path} was written by a newer initlab (store schema {version}; this initlab reads schema "
            f"{SCHEMA_VERSION}). Upgrade initlab (pip install -U initlab) to open it."
        )
    raise ValueError(
        f"{path} has store schema {version!r}, but this initlab reads schema {SCHEMA_VERSION} and "
        "cannot convert it. Open it with the initlab version that wrote it (export it with `export_csv`/"
        "`export_json` there), or start the study again in a new --out folder."
    )
