"""How an audit writes its numbers, in the terminal tables and on the page alike."""

from __future__ import annotations

import math


def fmt(value: float | int | None, spec: str = ".4g") -> str:
    """A number for a table: ``spec`` for floats, as is for ints, ``"-"`` when missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int):
        return str(value)
    return format(value, spec)
