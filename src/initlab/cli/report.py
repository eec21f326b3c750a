"""``initlab report``: build (or rebuild) the HTML report of a study folder."""

from __future__ import annotations

from pathlib import Path

import typer

from initlab.cli._app import app, console, fail, readable_store

# The metrics a sweep's heatmap can show (initlab.report._sweep.METRICS), listed here so that --help needs no import.
_METRICS = "test_acc, test_loss, val_acc or train_loss"


@app.command("report")
def report_command(
    study_dir: Path = typer.Argument(..., help="A study folder (the --out of initlab compare)."),
    out: Path | None = typer.Option(None, help="Folder or .html path for the report (default: STUDY_DIR/report)."),
    metric: str = typer.Option(
        "test_acc", help=f"For a sweep: the metric of its heatmap and lines, at the end of training: {_METRICS}."
    ),
    x: str | None = typer.Option(None, "--x", help="For a sweep: the heatmap's x axis (default: its first axis)."),
    y: str | None = typer.Option(None, "--y", help="For a sweep: the heatmap's y axis (default: its second axis)."),
    static: bool = typer.Option(
        False,
        "--static",
        help="Draw the figures with matplotlib: PNG files beside the page and a page without script (default: "
        "interactive charts, drawn in the browser from the numbers in the page).",
    ),
) -> None:
    """Build the self-contained HTML report of a study (interactive charts, ranked table) and print its path."""
    from initlab.report import build_report  # imported only when a report is built (matplotlib only with --static)

    if not (study_dir / "study.sqlite").exists():
        raise fail(f"{study_dir}: no study there (no study.sqlite).")
    try:
        with readable_store(study_dir):
            path = build_report(study_dir, out, metric=metric, x=x, y=y, static=static)
    except (ValueError, TypeError, FileNotFoundError, OSError) as exc:
        raise fail(str(exc)) from None
    console.print(str(path), highlight=False, soft_wrap=True)
