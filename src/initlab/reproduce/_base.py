"""Reproductions: published experiments about initialization as commands whose claims are checked.

A reproduction runs the experiment (``quick`` for the reduced form that the test suite runs), writes its figures
and a summary into an output folder, and returns a :class:`Result`: every claim of the source, the value the source
states, the value measured here, and whether the claim held.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from initlab.checks import did_you_mean


@dataclass(frozen=True)
class Claim:
    """One statement of the source and what was measured."""

    text: str
    expected: str
    measured: str
    passed: bool


@dataclass
class Result:
    """What a reproduction produced."""

    name: str
    title: str
    source: str
    quick: bool
    claims: list[Claim] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.claims)

    def check(self, text: str, expected: object, measured: object, passed: bool) -> None:
        """Record a claim."""
        self.claims.append(Claim(text, str(expected), str(measured), bool(passed)))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["figures"] = [str(p) for p in self.figures]
        d["passed"] = self.passed
        return d

    def write(self, out: Path) -> Path:
        """Write ``result.json`` and a Markdown summary into ``out``; return the summary's path."""
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.json").write_text(json.dumps(self.to_dict(), indent=2, default=str))
        lines = [
            f"# {self.title}",
            "",
            f"Source: {self.source}",
            "",
            f"Run: {'quick' if self.quick else 'full'} form, {self.seconds:.1f} s.",
            "",
            "| claim | source | measured | |",
            "|---|---|---|---|",
        ]
        lines += [f"| {c.text} | {c.expected} | {c.measured} | {'PASS' if c.passed else 'FAIL'} |" for c in self.claims]
        lines += [""] + [f"![{p.stem}]({p.name})" for p in self.figures]
        path = out / "summary.md"
        path.write_text("\n".join(lines) + "\n")
        return path


@dataclass(frozen=True)
class Reproduction:
    """A registered reproduction."""

    name: str
    title: str
    source: str
    full_time: str  # how long the full run takes on our 2-core machines
    run: Callable[[Path, bool], Result]


REGISTRY: dict[str, Reproduction] = {}


def register(
    name: str, title: str, source: str, full_time: str
) -> Callable[[Callable[[Path, bool], Result]], Callable[[Path, bool], Result]]:
    """Decorator that adds ``fn(out_dir, quick) -> Result`` to the registry under ``name``."""

    def wrap(fn: Callable[[Path, bool], Result]) -> Callable[[Path, bool], Result]:
        REGISTRY[name] = Reproduction(name, title, source, full_time, fn)
        return fn

    return wrap


def reproduce(name: str, out: str | Path, *, quick: bool = False) -> Result:
    """Run reproduction ``name``, write its figures and summary into ``out``, and return the result."""
    if name not in REGISTRY:
        raise ValueError(f"unknown reproduction {name!r}.{did_you_mean(name, REGISTRY)} Known: {', '.join(REGISTRY)}.")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = REGISTRY[name].run(out, quick)
    result.seconds = time.perf_counter() - start
    result.write(out)
    return result
