"""The Typer application shared by every command module, and the entry point."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

import initlab

app = typer.Typer(
    name="initlab",
    help="Neural-network weight initialization: the catalog, whole-model schemes, diagnostics and studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"initlab {initlab.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the library's log messages."),
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error, literally (it may quote the user's input: ``[bold]`` is not markup here), and
    return the exception that ends the command with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


@contextlib.contextmanager
def readable_store(folder: Path) -> Iterator[None]:
    """Turn SQLite's "database disk image is malformed" while reading the study in ``folder`` into one line that
    says what to do."""
    import sqlite3

    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise fail(f"the study database in {folder} is damaged ({exc}); run `initlab doctor {folder}` to see what is "
                   f"intact and `initlab doctor {folder} --salvage NEW_FOLDER` to copy it out.") from None  # fmt: skip


def os_failure(exc: OSError | Exception, fallback: Path | None = None) -> typer.Exit:
    """One line for an operating-system error (read-only, disk full, permission, a file where a folder should be),
    naming the path and the fix; SQLite's "database or disk is full" and "readonly database" too."""
    import errno

    path = getattr(exc, "filename", None) or fallback or ""
    code = getattr(exc, "errno", None)
    text = str(exc).lower()
    if code == errno.ENOSPC or "disk is full" in text:
        why, fix = "the disk is full", "free some space or choose another folder; the study resumes where it stopped"
    elif code == errno.EROFS or "readonly database" in text or "read-only file system" in text:
        why, fix = "the file system is read-only", "choose a folder on a writable disk (--out)"
    elif code in (errno.EACCES, errno.EPERM):
        why, fix = "permission denied", "choose a folder you can write (--out) or change its permissions"
    elif code in (errno.EEXIST, errno.ENOTDIR):
        why, fix = "a file is in the way where a folder should be", "choose another folder (--out)"
    else:
        why, fix = getattr(exc, "strerror", None) or str(exc), "check the path"
    return fail(f"cannot write {path}: {why}; {fix}.")


def main() -> None:
    """Entry point of the ``initlab`` script. glibc's malloc is set up for training first, before any thread
    allocates (:mod:`initlab.malloc`: freed memory kept for the next step, one arena for every thread)."""
    from initlab.malloc import keep_freed_memory

    keep_freed_memory()
    app()
