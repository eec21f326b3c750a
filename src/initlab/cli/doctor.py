"""``initlab doctor``: check a study folder and salvage what is intact."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from initlab.cli._app import app, console, fail


@app.command("doctor")
def doctor_command(
    study_dir: Path = typer.Argument(..., help="A study folder."),
    salvage: Path | None = typer.Option(None, "--salvage", help="Copy what is intact into this new study folder."),
) -> None:
    """Check a study folder: its database (SQLite's quick_check), every run's rows, and the checkpoints of unfinished
    runs. With --salvage NEW, copy what is intact into NEW, which `initlab compare --resume NEW` completes. Exit
    status 0 when everything is intact, 1 when something is damaged (after salvaging, if asked)."""
    from initlab.studies import doctor

    if not study_dir.is_dir():
        raise fail(f"{study_dir} is not a folder; give a study folder (one that holds study.sqlite).")
    found = doctor.examine(study_dir)
    for line in found.lines():
        console.print(escape(line), highlight=False, soft_wrap=True)
    if salvage is not None:
        try:
            doctor.salvage(study_dir, salvage)
        except (ValueError, OSError) as exc:
            raise fail(str(exc)) from None
        console.print(f"salvaged into {escape(str(salvage))}; complete it with: initlab compare --resume "
                      f"{escape(str(salvage))}", highlight=False, soft_wrap=True)  # fmt: skip
    if not found.healthy:
        raise typer.Exit(1)
