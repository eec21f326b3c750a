"""How the Store turns values into what SQLite and a CSV file hold, and back: pure functions, no database.

Floats round-trip exactly. Finite values and ±inf are stored in ``REAL`` columns, which hold IEEE doubles (SQL
aggregates and comparisons work on them directly). Two values cannot live in a ``REAL`` column: SQLite turns NaN into
``NULL`` and ``-0.0`` into ``0.0``. For those the ``REAL`` column holds ``NULL`` (NaN) or ``0.0`` (-0.0) and the row's
``special`` column, a JSON object, names the field and its value, e.g. ``{"val_loss": "nan"}``
(:func:`encode_floats`); a ``NULL`` without an entry in ``special`` is a missing value (``None``, see
:func:`decode_float`). In SQL, ``WHERE val_loss IS NOT NULL`` therefore selects the rows with a number.

JSON columns (config, scheme, meta, metrics, ``extra``, diagnostics) are written by :func:`canonical_json`: sorted
keys, no spaces, and Python's ``NaN``/``Infinity`` tokens and ``repr``-exact floats, which :func:`parse_json` reads back
exactly. Equal values therefore give equal text, which is how a re-written config, scheme or payload is recognized.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

__all__ = [
    "canonical_json",
    "config_diff",
    "csv_cell",
    "decode_float",
    "encode_floats",
    "flatten_config",
    "parse_json",
    "real",
]


def canonical_json(value: Any, what: str) -> str:
    """Canonical JSON (sorted keys, exact floats, NaN/Infinity tokens); ``what`` names the value in errors."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serializable (dicts, lists, str, numbers, bool, None): {exc}") from None


def parse_json(text: str | None) -> Any:
    """The value of a JSON column; ``None`` (SQL ``NULL``) stays ``None``."""
    return None if text is None else json.loads(text)


def real(name: str, value: object, *, optional: bool = False) -> float | None:
    """``value`` as a float (NaN and inf allowed), or None when ``optional``; rejects bools and non-numbers.

    ``name`` says in the error which value was wrong (e.g. ``"train_loss of run 'a/s0' epoch 3"``).
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        allowed = "a real number or None" if optional else "a real number"
        raise TypeError(f"{name} must be {allowed}, got {value!r} of type {type(value).__name__}.")
    return float(value)


def encode_floats(values: Mapping[str, float | None]) -> tuple[list[float | None], str | None]:
    """Column values plus the ``special`` JSON for the values a REAL column cannot hold (NaN, -0.0).

    The columns come in the order of ``values``; ``special`` is None when every value fits its column.
    """
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


def decode_float(name: str, stored: float | None, special: Mapping[str, str]) -> float | None:
    """The value of column ``name``: its ``special`` entry if it has one, else the stored number (or None)."""
    if name in special:
        return float(special[name])
    return None if stored is None else float(stored)


def csv_cell(value: object) -> str:
    """A value as one CSV cell: floats exact (``repr``), dicts and lists as canonical JSON, None as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest exact form; nan, inf and -inf read back with float()
    if isinstance(value, (dict, list)):
        return canonical_json(value, "value")
    return str(value)


def flatten_config(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys (``{"model": {"h": 1}}`` -> ``{"model.h": 1}``).

    An empty mapping is a leaf; a bare value at the top is keyed ``"(config)"``.
    """
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten_config(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix or "(config)": value}


def config_diff(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 5) -> str:
    """The settings that differ, as ``key: old -> new`` items, at most ``limit`` of them.

    Used in the error that refuses a folder holding another study, so a user sees which settings changed.
    """
    a, b = flatten_config(old), flatten_config(new)
    missing = object()

    def show(d: dict[str, Any], k: str) -> str:
        return repr(d[k]) if k in d else "(absent)"

    keys = sorted(k for k in set(a) | set(b) if a.get(k, missing) != b.get(k, missing))
    items = [f"{k}: {show(a, k)} -> {show(b, k)}" for k in keys[:limit]]
    if len(keys) > limit:
        items.append(f"and {len(keys) - limit} more")
    return "; ".join(items)
