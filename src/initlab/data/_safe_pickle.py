"""A pickle reader that rebuilds numpy arrays and refuses everything else without executing it.

A pickle is a program: ``pickle.load`` imports and calls whatever globals the file names (``os.system`` included).
:class:`ArrayUnpickler` resolves only the globals that numpy arrays are made of (``ndarray``, ``dtype`` and the
multiarray reconstruct helpers); any other global raises :class:`pickle.UnpicklingError` at the moment it is named,
before it could be called. Containers built by opcodes alone (tuples, lists, dicts, strings, numbers) need no global
and load as usual. This is a second line of defence: callers verify a file's sha256 before reading it.
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

# numpy 2 moved ``numpy.core`` to ``numpy._core`` (the old path warns); pickles name either, so both map to the
# object that exists in this numpy.
try:
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy < 2
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_module, "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(_module, "scalar")] = _multiarray.scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    # Protocol 5 pickles rebuild arrays from a buffer with this helper.
    _ALLOWED[(_module, "_frombuffer")] = _numeric._frombuffer


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """What a Python 3 protocol-2 pickle calls (as ``_codecs.encode``) to rebuild an array's byte buffer.

    Only the latin-1 text-to-bytes step is allowed, so no codec beyond plain data conversion can be reached.
    """
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}: only latin-1 is allowed.")
    return text.encode("latin-1", errors)


_ALLOWED[("_codecs", "encode")] = _latin1_encode

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(_ALLOWED)


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` returns only numpy's array machinery (see :data:`ALLOWED_GLOBALS`)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load the global {module}.{name}: this pickle may hold only numpy arrays, tuples, lists "
                "and numbers, so it was not executed."
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError(f"refused a persistent id {pid!r}: this pickle may hold only numpy arrays.")


def loads_arrays(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`ArrayUnpickler`.

    ``encoding="latin1"`` reads Python 2 pickles (whose numpy buffers are byte strings) as numpy itself recommends.
    """
    return ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()


def load_arrays(path: Path) -> Any:
    """Unpickle a file (gzip'd when its name ends in ``.gz``) with :class:`ArrayUnpickler`."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return loads_arrays(raw)
