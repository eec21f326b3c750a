"""``initlab reproduce``: published experiments, each claim printed next to the measured value."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from initlab.cli._app import app, console, fail


@app.command("reproduce")
def reproduce_command(
    name: str | None = typer.Argument(None, help="Reproduction to run (see --list)."),
    list_: bool = typer.Option(False, "--list", help="List the reproductions."),
    quick: bool = typer.Option(False, "--quick", help="The reduced form the test suite runs."),
    out: Path | None = typer.Option(None, help="Output folder (default: initlab-reproductions/NAME)."),
) -> None:
    """Run a published experiment and check each of its claims against what is measured."""
    from initlab.reproduce import REGISTRY, reproduce

    if list_ or name is None:
        table = Table(title="reproductions")
        for col in ("name", "what", "full run"):
            table.add_column(col)
        for r in REGISTRY.values():
            table.add_row(r.name, escape(r.title), escape(r.full_time))
        console.print(table)
        if name is None and not list_:
            console.print("Run one with: initlab reproduce NAME [--quick]")
        return
    folder = out or Path("initlab-reproductions") / (name + ("-quick" if quick else ""))
    try:
        with console.status(f"running {name}{' (quick)' if quick else ''}..."):
            result = reproduce(name, folder, quick=quick)
    except ValueError as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"{escape(result.title)}: {'quick' if quick else 'full'} form, {result.seconds:.1f} s")
    for col in ("claim", "source", "measured", ""):
        table.add_column(col)
    for c in result.claims:
        mark = "[green]PASS[/]" if c.passed else "[red]FAIL[/]"
        table.add_row(escape(c.text), escape(c.expected), escape(c.measured), mark)
    console.print(table)
    console.print(f"source: {escape(result.source)}")
    console.print(f"figures and summary: {folder}")
    if not result.passed:
        raise typer.Exit(1)
