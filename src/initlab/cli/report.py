"""``initlab report``: build (or rebuild) the HTML report of a study folder."""

from __future__ import annotations

from pathlib import Path

import typer

from initlab.cli._app import app, console, fail


@app.command("report")
def report_command(
    study_dir: Path = typer.Argument(..., help="A study folder (the --out of initlab compare)."),
    out: Path | None = typer.Option(None, help="Folder or .html path for the report (default: STUDY_DIR/report)."),
) -> None:
    """Build the self-contained HTML report of a study (figures, ranked table) and print its path."""
    from initlab.report import build_report  # matplotlib is imported only when a report is built

    if not (study_dir / "study.sqlite").exists():
        raise fail(f"{study_dir}: no study there (no study.sqlite).")
    try:
        path = build_report(study_dir, out)
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        raise fail(str(exc)) from None
    console.print(str(path), highlight=False, soft_wrap=True)
