"""The cache folder: where converted data sets live, how they are written (atomically) and checked (by sha256).

Every cached file ``F`` has a sidecar ``F.json`` that records the file's sha256, what it was built from and when. A
file whose bytes no longer match its sidecar (or that has no sidecar) is never read: the loader rebuilds it from a
source when it can and otherwise raises :class:`IntegrityError`, naming the file and what to do.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from initlab.fileio import atomic_writer

log = logging.getLogger(__name__)

CACHE_ENV = "INITLAB_CACHE"
SIDECAR_FORMAT = 1  # bump when the sidecar's fields change meaning


class IntegrityError(ValueError):
    """A data file whose bytes do not match the sha256 it must have: it is refused, never loaded."""


class DataNotFoundError(FileNotFoundError):
    """No source of a data set could be found or fetched; the message says how to make one available."""


def cache_dir() -> Path:
    """The cache folder: ``$INITLAB_CACHE`` if set, else ``$XDG_CACHE_HOME/initlab``, else ``~/.cache/initlab``.

    The folder is not created here; writers create what they need.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "initlab"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_array(array: np.ndarray) -> str:
    """The hex sha256 of an array's bytes in C order (dtype and shape are checked separately)."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def check_sha256(path: Path, expected: str, *, what_to_do: str) -> None:
    """Raise :class:`IntegrityError` unless the file's sha256 is ``expected``; the message names the file."""
    actual = sha256_file(path)
    if actual != expected:
        raise IntegrityError(
            f"{path} has sha256 {actual}, expected {expected}: the file is corrupt or was changed, so it is not "
            f"loaded. {what_to_do}"
        )


def sidecar_path(path: Path) -> Path:
    """The sidecar of ``path``: the same name with ``.json`` appended."""
    return path.with_name(path.name + ".json")


def write_npz(path: Path, arrays: dict[str, np.ndarray], *, source: str, extra: dict[str, Any] | None = None) -> str:
    """Write ``arrays`` as a compressed ``.npz`` at ``path`` and its sidecar, both atomically; return the sha256.

    The npz is written first and the sidecar second, so a crash in between leaves a file without a matching sidecar,
    which the reader treats as untrusted and rebuilds.
    """
    with atomic_writer(path) as f:
        np.savez_compressed(f, **arrays)
    digest = sha256_file(path)
    record: dict[str, Any] = {
        "format": SIDECAR_FORMAT,
        "file": path.name,
        "sha256": digest,
        "bytes": path.stat().st_size,
        "source": source,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
    }
    if extra:
        record.update(extra)
    with atomic_writer(sidecar_path(path), "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
    log.info("wrote %s (%d bytes, sha256 %s)", path, record["bytes"], digest)
    return digest


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar record of ``path``, or ``None`` when it is missing or unreadable."""
    side = sidecar_path(path)
    try:
        record = json.loads(side.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def verify_cached(path: Path, *, what_to_do: str) -> dict[str, Any]:
    """Check a cached file against its sidecar; return the sidecar, or raise :class:`IntegrityError`."""
    record = read_sidecar(path)
    if record is None or not isinstance(record.get("sha256"), str):
        raise IntegrityError(
            f"{path} has no readable record of its sha256 ({sidecar_path(path).name} is missing or damaged), so it "
            f"is not trusted. {what_to_do}"
        )
    check_sha256(path, record["sha256"], what_to_do=what_to_do)
    return record


def load_npz(path: Path, keys: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Read arrays from an ``.npz`` with ``allow_pickle=False`` (an object array raises instead of unpickling)."""
    with np.load(path, allow_pickle=False) as f:
        names = tuple(f.files) if keys is None else keys
        missing = [k for k in names if k not in f.files]
        if missing:
            raise ValueError(f"{path} lacks the arrays {missing}; it holds {sorted(f.files)}.")
        return {k: f[k] for k in names}


def cached_npz(
    path: Path,
    build: Callable[[], tuple[dict[str, np.ndarray], str]],
    *,
    rebuild_hint: str,
) -> tuple[dict[str, np.ndarray], str]:
    """Read a cached npz if it verifies; else build it (``build`` returns arrays and their source) and write it.

    A file that fails verification is logged as a warning, naming it, and rebuilt: it is never read.
    Returns the arrays and a description of where they came from.
    """
    if path.exists():
        try:
            record = verify_cached(path, what_to_do=rebuild_hint)
        except IntegrityError as exc:
            log.warning("%s Rebuilding it.", exc)
        else:
            return load_npz(path), f"initlab cache {path} ({record.get('source', 'unknown source')})"
    arrays, source = build()
    write_npz(path, arrays, source=source)
    return arrays, f"initlab cache {path} (built from {source})"
