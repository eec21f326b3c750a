"""The study lock: one runner per study folder, enforced by the operating system.

The Store has one writer by design (the runner's driver process); this lock keeps a second runner, started on the
same folder by mistake or by a second ``--resume``, from becoming another. It depends on nothing of initlab, so that a
runner, the CLI or a test can take it without importing the rest of :mod:`initlab.studies`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

try:  # POSIX only; on other systems study_lock degrades to a warning.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILENAME", "study_lock"]

logger = logging.getLogger(__name__)

# Inside the study folder, beside study.sqlite; it holds the pid of the process that has the lock.
LOCK_FILENAME = ".lock"


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
