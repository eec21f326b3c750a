"""A tiny TOML writer for scheme configs, so that initlab needs no TOML-writing dependency.

It writes what a scheme config holds: strings, booleans, integers, finite floats, arrays, tables and arrays of
tables (see :func:`dumps`).
``None`` values are left out (TOML has no null). Reading uses the standard library's ``tomllib`` (Python >= 3.11),
or ``tomli`` (its backport) on Python 3.10.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def loads(text: str) -> dict[str, Any]:
    """Parse TOML text with ``tomllib`` (or ``tomli`` on Python 3.10)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "reading TOML on Python 3.10 needs the 'tomli' package: pip install tomli"
            ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"invalid TOML: {err}") from None


def dumps(data: Mapping[str, Any]) -> str:
    """Write ``data`` (a dict) as a TOML document.

    Top-level scalars and arrays come first, then top-level dicts as ``[tables]``, then top-level lists of dicts as
    ``[[arrays of tables]]``; anything nested deeper is written inline (``{ key = value }``), which keeps a rule on
    the lines under its ``[[rules]]`` header.
    """
    lines: list[str] = []
    simple = {k: v for k, v in data.items() if v is not None and not _is_table(v) and not _is_table_array(v)}
    for key, value in simple.items():
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in data.items():
        if _is_table(value):
            lines.extend(["", f"[{_key(key)}]"])
            lines.extend(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
    for key, items in data.items():
        if _is_table_array(items):
            for item in items:
                lines.extend(["", f"[[{_key(key)}]]"])
                lines.extend(f"{_key(k)} = {_value(v)}" for k, v in item.items() if v is not None)
    return "\n".join(lines).strip() + "\n"


def _is_table(value: object) -> bool:
    return isinstance(value, Mapping)


def _is_table_array(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) > 0
        and all(isinstance(v, Mapping) for v in value)
    )


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"TOML keys must be strings, got {key!r}.")
    return key if _BARE_KEY.match(key) else _string(key)


def _string(text: str) -> str:
    # JSON's escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the non-finite float {value!r} to a scheme file.")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = [f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    if isinstance(value, Sequence):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} of type {type(value).__name__} to TOML.")
