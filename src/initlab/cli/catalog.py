"""``initlab list`` and ``initlab show``: the catalog in the terminal."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

import initlab
from initlab.cli._app import app, console, fail

if TYPE_CHECKING:
    import torch

_BARS = " ▁▂▃▄▅▆▇█"


@app.command("list")
def list_command() -> None:
    """List every initializer in the catalog with its formula."""
    table = Table(title="initlab catalog", show_lines=False)
    table.add_column("name", style="bold")
    table.add_column("also", style="dim")
    table.add_column("formula")
    table.add_column("from", style="dim")
    for entry in initlab.catalog():
        also = ", ".join((entry.snake_name, *entry.aliases))
        table.add_row(entry.name, escape(also), escape(entry.formula), entry.family)
    console.print(table)
    console.print("n = fan by mode; fans follow the layout (torch (out, in, *k) by default). `initlab show NAME`.")


#: The most elements ``initlab show`` draws (400 MB of float32): a sample, not a model.
MAX_SHOW_ELEMENTS = 100_000_000


def parse_shape(text: str) -> tuple[int, ...]:
    """``"256x784"`` -> ``(256, 784)``; also accepts commas. ValueError for an empty or malformed shape, and for
    one of more than :data:`MAX_SHOW_ELEMENTS` elements (checked before anything is allocated)."""
    parts = [p.strip() for p in text.replace(",", "x").replace("×", "x").split("x")]
    if not text.strip():
        raise ValueError("--shape is empty; write a shape like 256x784 or 64x3x3x3.")
    if any(not p for p in parts):
        raise ValueError(f"--shape {text!r} has an empty dimension; write it like 256x784 or 64x3x3x3.")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--shape {text!r} is not a shape; write it like 256x784 or 64x3x3x3.") from None
    if math.prod(max(d, 0) for d in dims) > MAX_SHOW_ELEMENTS:
        raise ValueError(f"--shape {text!r} has {math.prod(dims):,} elements; `initlab show` draws at most "
                         f"{MAX_SHOW_ELEMENTS:,} (400 MB of float32). Use a smaller shape.")  # fmt: skip
    return dims


def _histogram(values: torch.Tensor, bins: int = 48) -> list[str]:
    import torch

    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return [f"all {values.numel()} values equal {lo:.6g}"]
    counts = torch.histc(values.double(), bins=bins, min=lo, max=hi)
    top = float(counts.max())
    bar = "".join(_BARS[min(len(_BARS) - 1, math.ceil(c / top * (len(_BARS) - 1)))] for c in counts.tolist())
    return [bar, f"{lo:<+.4g}{'':>{max(1, bins - 20)}}{hi:>+.4g}"]


@app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Initializer name, e.g. glorot_uniform."),
    shape: str = typer.Option("256x784", "--shape", help="Tensor shape, e.g. 256x784 or 64x3x3x3."),
    layout: str = typer.Option("torch", "--layout", help="torch, torch_transpose or keras."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample."),
    groups: int = typer.Option(1, "--groups", help="Convolution groups (divide the fan-out)."),
) -> None:
    """Show an initializer's fans, its theoretical and sampled statistics, and a histogram."""
    from initlab.fans import Layout, as_layout

    try:
        init = initlab.get(name)
        dims = parse_shape(shape)
        lay = Layout(as_layout(layout).kind, groups=groups)
        fans = lay.fans(dims)
        theory = init.distribution(dims, lay)
        sample = init(dims, seed=seed, layout=lay)
    except (ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    console.print(f"[bold]{escape(repr(init))}[/]  {escape(type(init).formula)}")
    console.print(f"shape {dims}  layout {lay.kind}  groups {groups}")
    console.print(f"fan_in {fans.fan_in}  fan_out {fans.fan_out}  receptive field {fans.receptive_field}")
    table = Table()
    for col in ("", "mean", "std", "min", "max"):
        table.add_column(col, justify="right")
    table.add_row("theory", f"{theory.mean:.6g}", f"{theory.std:.6g}", f"{theory.low:.6g}", f"{theory.high:.6g}")
    flat = sample.flatten().double()
    std = float(flat.std()) if flat.numel() > 1 else 0.0
    table.add_row(
        "sample",
        f"{float(flat.mean()):.6g}",
        f"{std:.6g}",
        f"{float(flat.min()):.6g}",
        f"{float(flat.max()):.6g}",
    )
    console.print(table)
    for line in _histogram(flat):
        console.print(line, highlight=False)
