"""``initlab coordcheck``: the coordinate check of a model under the standard parametrization and muP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from initlab.cli._app import app, console, fail

if TYPE_CHECKING:
    from initlab.coordcheck import CoordCheck


def _widths(text: str) -> list[int]:
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise fail(f"--widths {text!r}: give comma-separated positive integers, e.g. 64,128,256,512.") from None


def _table(result: CoordCheck) -> object:
    from rich.table import Table

    table = Table(title=f"coordinate check: slope of log mean |h - h₀| against log width after step {result.steps} "
                        f"(pass: |slope| <= {result.tolerance:g})")  # fmt: skip
    table.add_column("layer")
    for kind in ("SP", "muP"):
        table.add_column(f"{kind} slope", justify="right")
        table.add_column(kind)
    for sp, mu in zip(result.layers["standard"], result.layers["mup"], strict=True):
        cells = []
        for layer in (sp, mu):
            cells += [f"{layer.slope:.3f}", "[green]pass[/]" if layer.passed else "[red]FAIL[/]"]
        table.add_row(escape(f"{sp.layer} ({mu.role})"), *cells)
    return table


@app.command("coordcheck")
def coordcheck_command(
    model: str = typer.Argument(..., help="Model spec with equal hidden widths, e.g. 'mlp:64,64' or 'cnn:16,16'."),
    widths: str = typer.Option("64,128,256,512,1024", "--widths", help="Comma-separated widths (at least two)."),
    steps: int = typer.Option(5, "--steps", help="Training steps at each width."),
    optimizer: str = typer.Option("adam", "--optimizer", help="sgd, adam, adamw or rmsprop."),
    lr: float | None = typer.Option(None, "--lr", help="Learning rate (default: 0.01 for Adam, 0.1 for SGD)."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds averaged at each width."),
    dataset: str = typer.Option("digits", "--dataset", help="Training data (initlab data list)."),
    scheme: str = typer.Option("lecun_normal", "--scheme", help="The initialization drawn before the parametrization."),
    base_width: int | None = typer.Option(None, "--base-width", help="muP's base width (default: the smallest)."),
    output: str = typer.Option("zero", "--output", help="muP's output layer: zero or scaled (variance / width ratio)."),
    out: Path = typer.Option(Path("coordcheck"), "--out", help="Folder for coordcheck.png and coordcheck.json."),
) -> None:
    """Train MODEL for a few steps at each width under the standard parametrization and muP, and check that every
    layer's output changes by the same amount at every width (Yang et al. 2022, "Tensor Programs V", appendix D.1).
    Exits with status 1 when a muP layer fails."""
    from initlab.coordcheck import coord_check
    from initlab.fileio import json_safe, write_atomic

    options: dict[str, Any] = {"optimizer": optimizer, "output": output}  # checked by coord_check
    try:
        result = coord_check(model, _widths(widths), dataset=dataset, steps=steps, lr=lr, seeds=seeds, scheme=scheme,
                             base_width=base_width, **options)  # fmt: skip
    except (ValueError, TypeError, KeyError) as exc:
        raise fail(str(exc).strip("'\"")) from None
    console.print(_table(result))
    try:
        figure = result.figure(out / "coordcheck.png")
        write_atomic(out / "coordcheck.json", json.dumps(json_safe(result.to_dict()), indent=2, allow_nan=False))
    except OSError as exc:
        raise fail(f"cannot write into {out}: {exc}") from None
    console.print(f"figure: {figure}\nvalues: {out / 'coordcheck.json'}")
    failing = result.failing("mup")
    if failing:
        names = escape(", ".join(failing))
        console.print(f"[red]muP fails at layer(s) {names}[/]: their change grows or shrinks with width.")
        raise typer.Exit(1)
    console.print("[green]muP passes at every layer.[/]")
