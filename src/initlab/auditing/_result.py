"""The result of an audit: one row per parameter, the findings, and the thresholds they were judged by; as a Rich
table, JSON and an HTML page."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args

from initlab.auditing import _stats
from initlab.auditing._format import fmt
from initlab.auditing._residual import RESIDUAL_TOLERANCE
from initlab.fileio import json_safe, write_atomic

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
FindingKind = Literal[
    "non_finite",
    "all_zero",
    "constant",
    "duplicate_units",
    "std_mismatch",
    "mean_mismatch",
    "family_mismatch",
    "value_mismatch",
    "off_rule",
    "residual_not_scaled",
    "residual_scaled",
    "residual_other",
    "tied",
    "uncovered",
]
FINDING_KINDS: tuple[FindingKind, ...] = get_args(FindingKind)

_STYLE: dict[str, str] = {"error": "bold red", "warning": "yellow", "info": "cyan"}


@dataclass(frozen=True)
class AuditFinding:
    """One thing the audit found: what, how bad, which parameters, in words, and the figures it was read from."""

    kind: FindingKind
    severity: Severity
    parameters: tuple[str, ...]
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "parameters": list(self.parameters),
            "message": self.message,
            "figures": json_safe(self.figures),
        }


@dataclass
class ParameterAudit:
    """One parameter (one gate or projection block of a packed one): what it is, what was measured, what was
    expected, and the worst severity of its findings (``None`` when it has none)."""

    key: str  #: qualified name, with the block in brackets for a packed parameter
    module: str
    module_type: str
    role: str
    position: str  #: "hidden", "head", "residual", "embedding" or "vector" (what is expected of it on its own)
    shape: tuple[int, ...]
    dtype: str
    fan_in: int | None
    fan_out: int | None
    n: int  #: values measured (an embedding's padding row is left out)
    nonfinite: int
    mean: float
    std: float
    min: float
    max: float
    expected: str | None = None  #: the reference's rule in words; None where no rule covers the parameter
    expected_mean: float | None = None
    expected_std: float | None = None
    p_value: float | None = None  #: the variance test's two-sided p-value
    closest_rule: str | None = None  #: the fan-based rule nearest the observed std (weight matrices)
    rule_ratio: float | None = None  #: observed std / that rule's std
    residual: str | None = None  #: the depth-scaling verdict of a residual output projection
    tied_to: tuple[str, ...] = ()  #: other names of the same tensor
    severity: Severity | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return json_safe({**out, "shape": list(self.shape), "tied_to": list(self.tied_to)})


def method_text(significance: float, min_deviation: float) -> list[str]:
    """The tests and thresholds, in words, for every output."""
    return [
        f"std: n·s²/σ² ~ χ²(n−1) against the reference's σ; a mismatch needs two-sided p < {significance:g} and "
        f"|s/σ − 1| > {min_deviation:.0%}.",
        f"mean: z = (x̄ − μ)·√n/σ; a shift needs p < {significance:g} and |x̄ − μ| > {_stats.MIN_MEAN_SHIFT:g}·σ.",
        f"shape: values outside a bounded family's support, or excess kurtosis off by > "
        f"{_stats.FAMILY_MIN_KURTOSIS_GAP:g} (p < {significance:g}, n ≥ {_stats.FAMILY_MIN_SIZE}).",
        f"fan-based rules: σ = g/√fan, g ∈ {{1/√3, 3/4, 1, √2, 5/3}}, fan ∈ {{fan_in, fan_out, mean}}; a std fits "
        f"when within ×/÷{_stats.RULE_FACTOR:g}.",
        f"duplicates: exactly equal rows or columns of ≥ {_stats.MIN_SLICE} entries ({_stats.MIN_SLICE_16BIT} in "
        "16-bit floats).",
        f"residual projections: scaled for depth when std/σ₀ is within ×/÷{RESIDUAL_TOLERANCE:g} of 1/√N "
        "(Radford et al. 2019, §2.3).",
    ]


@dataclass
class Audit:
    """What :func:`initlab.audit` found: a :class:`ParameterAudit` per parameter and the :class:`AuditFinding` list.

    ``ok`` is true when no finding is an error; :meth:`exit_code` is what ``initlab audit`` exits with.
    ``print(audit)`` shows the tables, ``to_dict()``/``to_json()`` give plain data, ``to_html()``/``save_html()`` a
    self-contained page.
    """

    model: str  #: the model's class name
    reference: str  #: what the parameters were compared with, in words
    explicit: bool  #: whether the caller named the scheme (a mismatch with it is then an error)
    parameters: list[ParameterAudit]
    findings: list[AuditFinding]
    significance: float = _stats.SIGNIFICANCE
    min_deviation: float = _stats.MIN_RELATIVE_DEVIATION

    # -- verdicts ---------------------------------------------------------------------------------------------------
    def by_severity(self, severity: Severity) -> list[AuditFinding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def errors(self) -> list[AuditFinding]:
        return self.by_severity("error")

    @property
    def warnings(self) -> list[AuditFinding]:
        return self.by_severity("warning")

    @property
    def ok(self) -> bool:
        """No error-level finding."""
        return not self.errors

    def exit_code(self, *, strict: bool = False) -> int:
        """1 when there is an error-level finding (or, with ``strict``, a warning), else 0."""
        return 1 if self.errors or (strict and self.warnings) else 0

    def kinds(self, severity: Severity | None = None) -> set[str]:
        """The kinds of the findings (of one severity, if given)."""
        return {f.kind for f in self.findings if severity is None or f.severity == severity}

    def findings_for(self, key: str) -> list[AuditFinding]:
        """The findings that concern parameter ``key``."""
        return [f for f in self.findings if key in f.parameters]

    def __getitem__(self, key: str) -> ParameterAudit:
        for row in self.parameters:
            if row.key == key:
                return row
        from initlab.checks import did_you_mean

        raise KeyError(f"no parameter {key!r} in the audit.{did_you_mean(key, [r.key for r in self.parameters])}")

    def summary(self) -> str:
        counts = {s: len(self.by_severity(s)) for s in SEVERITIES}
        return (f"{len(self.parameters)} parameters audited against {self.reference}: {counts['error']} error(s), "
                f"{counts['warning']} warning(s), {counts['info']} note(s).")  # fmt: skip

    def method(self) -> list[str]:
        return method_text(self.significance, self.min_deviation)

    # -- plain data -------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reference": self.reference,
            "explicit": self.explicit,
            "ok": self.ok,
            "summary": self.summary(),
            "counts": {s: len(self.by_severity(s)) for s in SEVERITIES},
            "thresholds": {
                **_stats.THRESHOLDS,
                "significance": self.significance,
                "min_relative_deviation": self.min_deviation,
                "residual_tolerance": RESIDUAL_TOLERANCE,
            },
            "method": self.method(),
            "findings": [f.to_dict() for f in self.findings],
            "parameters": [p.to_dict() for p in self.parameters],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON (NaN and infinity as null)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    # -- pages ------------------------------------------------------------------------------------------------------
    def to_html(self, title: str | None = None) -> str:
        """A self-contained HTML page (no script, no network; every value escaped)."""
        from initlab.auditing._html import render

        return render(self.to_dict(), title or f"initlab audit: {self.model}")

    def save_html(self, path: str | Path, title: str | None = None) -> Path:
        """Write :meth:`to_html` to ``path`` (atomically) and return the path."""
        return write_atomic(path, self.to_html(title))

    # -- tables -----------------------------------------------------------------------------------------------------
    def table(self) -> Any:
        """A compact ``rich.table.Table`` with one row per parameter, the verdict next to its name (the module type
        and the closest fan-based rule are in :meth:`to_dict` and the HTML page). Every column folds rather than
        being cut off in a narrow terminal."""
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        title = escape(f"audit of {self.model} against {self.reference}")
        table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
        names = [r.key + (f" (= {', '.join(r.tied_to)})" if r.tied_to else "") for r in self.parameters]
        table.add_column("parameter", overflow="fold")
        for col in ("verdict", "role", "shape", "fans in→out", "mean", "std", "min", "max", "expected std", "p"):
            left = col in ("verdict", "role", "shape")
            table.add_column(col, justify="left" if left else "right", overflow="fold")
        for r, name in zip(self.parameters, names, strict=True):
            verdict = r.severity or "ok"
            table.add_row(
                escape(name),
                f"[{_STYLE[verdict]}]{verdict}[/]" if verdict in _STYLE else verdict,
                r.role,
                "×".join(map(str, r.shape)),
                f"{fmt(r.fan_in)}→{fmt(r.fan_out)}",
                fmt(r.mean, ".3g"),
                fmt(r.std, ".3g"),
                fmt(r.min, ".3g"),
                fmt(r.max, ".3g"),
                fmt(r.expected_std, ".3g"),
                fmt(r.p_value, ".1g"),
            )
        return table

    def findings_table(self) -> Any:
        """A ``rich.table.Table`` of the findings, errors first."""
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="findings", show_lines=True)
        for col in ("severity", "kind", "parameters", "finding"):
            table.add_column(col)
        for f in self.findings:
            shown = ", ".join(f.parameters[:4]) + (
                f" and {len(f.parameters) - 4} more" if len(f.parameters) > 4 else ""
            )
            table.add_row(f"[{_STYLE[f.severity]}]{f.severity}[/]", f.kind, escape(shown), escape(f.message))
        return table

    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.markup import escape

        method = [f"[dim]{escape(line)}[/]" for line in ["How it was judged:", *self.method()]]
        findings = self.findings_table() if self.findings else "No findings."
        verdict = "[bold red]FAIL[/]" if self.errors else "[bold green]PASS[/]"
        return Group(self.table(), findings, *method, f"{verdict} {escape(self.summary())}")

    def __str__(self) -> str:
        from rich.console import Console

        buffer = io.StringIO()
        Console(file=buffer, width=200, color_system=None, legacy_windows=False).print(self)
        return buffer.getvalue()
