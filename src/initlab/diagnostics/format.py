"""How a diagnosis writes its numbers: one rule for the terminal tables and for the report built from a stored
diagnosis, so that both show the same figures. A missing value (``None``, or NaN for "not measured") is ``"-"``.
"""

from __future__ import annotations

import math


def fmt(value: float | None, spec: str = ".3g") -> str:
    """``value`` formatted with ``spec`` (three significant digits by default), or ``"-"`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal (``0.125`` -> ``"12.5"``), or ``"-"`` when missing."""
    return "-" if value is None else f"{100 * value:.1f}"
