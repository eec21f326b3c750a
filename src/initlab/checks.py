"""Validation helpers shared by every package: option strings, numbers and shapes.

Every check raises a real exception (``ValueError`` or ``TypeError``) whose message quotes the argument, its value,
what is allowed, and, for strings, the closest allowed values.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

T = TypeVar("T", bound=str)


def closest(word: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """Return up to ``n`` entries of ``choices`` that look most like ``word`` (case-insensitive)."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(word.lower(), list(lowered), n=n, cutoff=cutoff)
    return [lowered[h] for h in hits]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ``" Did you mean 'x'?"`` suffix, or an empty string when nothing is close."""
    hits = closest(word, choices)
    if not hits:
        return ""
    if len(hits) == 1:
        return f" Did you mean {hits[0]!r}?"
    return " Did you mean " + ", ".join(repr(h) for h in hits[:-1]) + f" or {hits[-1]!r}?"


def check_choice(name: str, value: object, allowed: Sequence[T]) -> T:
    """Return ``value`` if it is one of ``allowed``; else raise ``ValueError`` listing them and the closest match."""
    if isinstance(value, str) and value in allowed:
        return value  # type: ignore[return-value]
    listed = ", ".join(repr(a) for a in allowed)
    hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
    raise ValueError(f"{name}={value!r} is not allowed; choose one of {listed}.{hint}")


def check_mapping(name: str, value: object) -> Mapping[str, Any]:
    """Return ``value`` if it is a mapping (a config dict); else raise ``TypeError`` naming ``name`` and the type."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict, got {type(value).__name__}.")
    return value


def check_keys(name: str, keys: Iterable[object], allowed: Sequence[str], *, listed_as: str = "allowed keys") -> None:
    """Raise ``ValueError`` if any of ``keys`` (a config's) is not in ``allowed``; the message lists the unknown
    keys, the allowed ones (after ``listed_as``) and the closest match to the first unknown key."""
    unknown = [k for k in keys if k not in allowed]
    if unknown:
        hint = did_you_mean(str(unknown[0]), allowed)
        raise ValueError(f"{name} has unknown keys {unknown}; {listed_as}: {', '.join(allowed)}.{hint}")


def check_finite(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return float(value)


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise unless it is finite and > 0."""
    v = check_finite(name, value)
    if v <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}.")
    return v


def check_nonnegative(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise unless it is finite and >= 0."""
    v = check_finite(name, value)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}.")
    return v


def check_int(name: str, value: object, *, minimum: int | None = None) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r} of type {type(value).__name__}.")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")
    return value


def check_shape(shape: object) -> tuple[int, ...]:
    """Normalize a shape (an int, a sequence of ints or a ``torch.Size``) and reject zero or negative sizes."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        dims: tuple[object, ...] = (shape,)
    elif isinstance(shape, Sequence) and not isinstance(shape, str):
        dims = tuple(shape)
    else:
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}.")
    out: list[int] = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int):
            # numpy integers and 0-d tensors are fine as long as they convert exactly.
            try:
                as_int = int(d)  # type: ignore[call-overload]
            except (TypeError, ValueError):
                raise TypeError(f"shape {shape!r} has a non-integer dimension {d!r}.") from None
            if as_int != d:
                raise TypeError(f"shape {shape!r} has a non-integer dimension {d!r}.")
            d = as_int
        if d <= 0:
            raise ValueError(
                f"shape {tuple(dims)!r} has a dimension of size {d}; every dimension must be >= 1 "
                "(an empty tensor has nothing to initialize)."
            )
        out.append(d)
    return tuple(out)
