"""Reproductions: published experiments about initialization as commands whose claims are checked.

A reproduction runs the experiment (``quick`` for the reduced form that the test suite runs), writes its figures
and a summary into an output folder, and returns a :class:`Result`: every claim of the source, the value the source
states, the value measured here, and whether the claim held.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from initlab.checks import did_you_mean
from initlab.store import EpochRecord


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
    name: str, title: str, source: str, full_time: str, *, heading: str
) -> Callable[[Callable[[Result, Path], Result]], Callable[[Path, bool], Result]]:
    """Decorator that adds a reproduction to the registry under ``name``.

    The decorated ``fn(result, out_dir) -> Result`` gets a new :class:`Result` of this reproduction, titled
    ``heading`` (its ``quick`` says which form to run), fills in the claims and figures and returns it; the registry
    and the module keep ``run(out_dir, quick) -> Result``, which calls it.
    """

    def wrap(fn: Callable[[Result, Path], Result]) -> Callable[[Path, bool], Result]:
        def run(out: Path, quick: bool) -> Result:
            return fn(Result(name, heading, source, quick), out)

        REGISTRY[name] = Reproduction(name, title, source, full_time, run)
        return run

    return wrap


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend, imported when a reproduction first draws."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG (90 dpi, tight box), close it and return ``path``."""
    fig.savefig(path, dpi=90, bbox_inches="tight")
    pyplot().close(fig)
    return path


def val_accuracy_curves(epochs: Iterable[EpochRecord]) -> dict[str, dict[int, list[float]]]:
    """Each arm's validation accuracy in percent by epoch, one value per seed, from a study's stored epochs (run
    ids ``ARM/sSEED``); a missing value counts as 0."""
    curves: dict[str, dict[int, list[float]]] = {}
    for e in epochs:
        arm = e.run_id.rsplit("/", 1)[0]
        curves.setdefault(arm, {}).setdefault(e.epoch, []).append(100 * (e.val_acc or 0.0))
    return curves


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
