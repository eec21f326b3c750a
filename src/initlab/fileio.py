"""Files that are never seen half written, and JSON that strict readers accept: one helper of each for all of initlab.

A study folder, a data cache and a report are read by other processes (a resumed study, a browser, a second
worker) while they are being written, and a kill may come at any moment. Every file initlab writes therefore goes
through :func:`atomic_writer`: a temporary file beside the target, flushed and fsynced, then renamed over it with
``os.replace``, which POSIX makes atomic within a file system. A reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Literal


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: Literal["wb", "w"] = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; when the block ends without an exception it replaces ``path``.

    A crash or an exception leaves ``path`` as it was (absent or the old version) and removes the temporary file.
    The file is opened with ``open`` rather than ``mkstemp``, so it gets the usual permissions under the user's
    umask, not 0600. Parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` through :func:`atomic_writer`; return the path."""
    with atomic_writer(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
    return Path(path)


def json_safe(value: Any, *, nonfinite: Literal["null", "string"] = "null") -> Any:
    """A copy of ``value`` that strict JSON (``allow_nan=False``, browsers' ``JSON.parse``) accepts.

    JSON has no NaN or infinity. ``nonfinite="null"`` writes them as ``null`` (a missing value, as in a diagnosis);
    ``"string"`` as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (a lossless export, read back with
    ``float()``). Mapping keys become strings; tuples become lists.
    """
    if isinstance(value, float) and not math.isfinite(value):
        if nonfinite == "null":
            return None
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, nonfinite=nonfinite) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, nonfinite=nonfinite) for v in value]
    return value
