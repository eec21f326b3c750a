"""InitReport: what :func:`initlab.initialize` applied to each parameter, as a table and as a dict."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from initlab.checks import did_you_mean


@dataclass
class InitEntry:
    """One initialized parameter, or one gate/projection block of a packed parameter.

    ``fan_in``/``fan_out`` are those of the entry's own tensor (the block for a gate) under its layout; ``gain`` is
    the initializer's gain (its ``gain`` argument, √scale for variance scaling, the activation's gain under
    "auto"), ``None`` where it has none. ``mean`` and ``std`` (population std) are measured on the final values.
    """

    name: str  #: qualified parameter name
    block: str | None  #: gate or projection block, or None
    module: str  #: qualified module name
    module_type: str
    role: str
    shape: tuple[int, ...]
    rule: str | None  #: the rule that matched, in words; None if uncovered
    init: dict[str, Any] | None  #: the initializer's config (``initlab.serialize``), None if uncovered or torch's own
    fan_in: int | None = None
    fan_out: int | None = None
    gain: float | None = None
    mean: float = math.nan
    std: float = math.nan
    activation: str | None = None  #: "auto": the activation found after the layer, and how it was found
    var_before: float | None = None  #: LSUV: output variance after the orthonormal pre-initialization
    var_after: float | None = None  #: LSUV: output variance at the end
    iterations: int | None = None  #: LSUV: rescaling steps used
    converged: bool | None = None  #: LSUV: whether |var_after - target| <= tol
    note: str | None = None  #: anything else worth knowing (padding row kept at zero, tied weights, ...)

    @property
    def key(self) -> str:
        return self.name if self.block is None else f"{self.name}[{self.block}]"

    def measure(self, tensor: torch.Tensor) -> None:
        """Set ``mean`` and ``std`` from ``tensor`` (computed in float64)."""
        values = tensor.detach().to(torch.float64)
        self.mean = float(values.mean())
        self.std = float(values.std(correction=0))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["shape"] = list(self.shape)
        return out


@dataclass
class InitReport:
    """What a scheme did to a model: one :class:`InitEntry` per parameter (per block for packed ones).

    ``uncovered`` lists the keys of parameters no rule covered (they keep their values and are reported with a
    warning). ``print(report)`` shows a table; ``rich.print(report)`` renders it in colour; ``to_dict()`` gives plain
    data for JSON or a study record.
    """

    scheme: Any  #: the scheme as a config (a dict), or its name
    seed: int | None
    entries: list[InitEntry] = field(default_factory=list)
    uncovered: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  #: scheme-specific settings (LSUV's target and tol)

    def __iter__(self) -> Iterator[InitEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, key: str) -> InitEntry:
        """The entry for ``"name"`` or, for a block, ``"name[block]"``."""
        for entry in self.entries:
            if entry.key == key:
                return entry
        keys = [e.key for e in self.entries]
        raise KeyError(f"no entry {key!r} in the report.{did_you_mean(key, keys)}")

    def by_module(self, module: str) -> list[InitEntry]:
        """Every entry of the module with qualified name ``module``."""
        return [e for e in self.entries if e.module == module]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "seed": self.seed,
            "entries": [e.to_dict() for e in self.entries],
            "uncovered": list(self.uncovered),
            **({"extra": dict(self.extra)} if self.extra else {}),
        }

    def table(self) -> Any:
        """A ``rich.table.Table`` with one row per entry; columns for "auto" and LSUV appear when they apply."""
        from rich.markup import escape
        from rich.table import Table

        show_act = any(e.activation is not None for e in self.entries)
        show_lsuv = any(e.iterations is not None for e in self.entries)
        title = f"initialize: scheme {scheme_title(self.scheme)}, seed {self.seed}"
        table = Table(title=escape(title), show_lines=False)
        for col, justify in [
            ("parameter", "left"),
            ("module", "left"),
            ("role", "left"),
            ("shape", "left"),
            ("rule", "left"),
            ("init", "left"),
            ("fan in", "right"),
            ("fan out", "right"),
            ("gain", "right"),
            ("mean", "right"),
            ("std", "right"),
        ]:
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        if show_act:
            table.add_column("activation")
        if show_lsuv:
            table.add_column("var before → after", justify="right")
            table.add_column("iters", justify="right")
        for e in self.entries:
            row = [
                escape(e.key),
                escape(e.module_type),
                e.role,
                "×".join(map(str, e.shape)),
                escape(e.rule) if e.rule is not None else "[bold red]UNCOVERED[/]",
                escape(_init_text(e.init)),
                _fmt(e.fan_in),
                _fmt(e.fan_out),
                _fmt(e.gain),
                _fmt(e.mean),
                _fmt(e.std),
            ]
            if show_act:
                row.append(escape(e.activation or ""))
            if show_lsuv:
                if e.iterations is None:
                    row += ["", ""]
                else:
                    mark = "" if e.converged else " [red](not converged)[/]"
                    row += [f"{_fmt(e.var_before)} → {_fmt(e.var_after)}{mark}", str(e.iterations)]
            table.add_row(*row)
        if self.uncovered:
            listed = escape(", ".join(self.uncovered))
            table.caption = f"{len(self.uncovered)} parameter(s) not covered by any rule: {listed}"
        return table

    def __rich__(self) -> Any:
        return self.table()

    def __str__(self) -> str:
        from rich.console import Console

        buffer = io.StringIO()
        Console(file=buffer, width=200, color_system=None, legacy_windows=False).print(self.table())
        return buffer.getvalue()


def scheme_title(scheme: Any) -> str:
    """A short name for a scheme config: its name, its class name, or the string itself."""
    if isinstance(scheme, dict):
        config = scheme.get("config") if isinstance(scheme.get("config"), dict) else scheme
        return str(config.get("name") or scheme.get("class_name") or "custom")
    return str(scheme)


def _init_text(init: dict[str, Any] | None) -> str:
    if init is None:
        return ""
    config = init.get("config") or {}
    args = ", ".join(f"{k}={_fmt(v) if isinstance(v, float) else repr(v)}" for k, v in config.items())
    return f"{init.get('class_name')}({args})"


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)
