"""``initlab data list`` and ``initlab data prepare NAME``: what data is available offline, and making it so."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from initlab.cli._app import app, console, fail

if TYPE_CHECKING:
    from initlab.data import DatasetInfo

data_app = typer.Typer(
    help="Data sets, offline: what is available, and preparing them in the cache.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


def _size(n: int) -> str:
    if n <= 0:
        return ""
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def _splits(info: DatasetInfo) -> str:
    if info.split_sizes is None:
        return f"n_samples per split ({info.options.get('n_samples')})"
    return " / ".join(f"{info.split_sizes[s]:,}" for s in ("train", "val", "test"))


@data_app.command("list")
def list_command() -> None:
    """List every data set: whether it loads offline now, from where, its splits and shapes."""
    from initlab import data as _data

    table = Table(title="initlab data sets", show_lines=False)
    table.add_column("name", style="bold")
    table.add_column("offline")
    table.add_column("train / val / test")
    table.add_column("input", justify="right")
    table.add_column("classes", justify="right")
    table.add_column("size", justify="right")
    table.add_column("from", overflow="fold")
    for name, info in _data.DATASETS.items():
        state = _data.availability(name)
        mark = "[green]yes[/]" if state.available else "[red]no[/]"
        shape = "×".join(map(str, info.input_shape))
        classes = "float" if info.num_classes is None else str(info.num_classes)
        table.add_row(name, mark, _splits(info), shape, classes, _size(state.bytes), state.where)
    console.print(table)
    console.print(f"cache: {_data.cache_dir()}  (set INITLAB_CACHE to move it)", highlight=False)
    console.print("`initlab data prepare NAME` makes a data set available offline.", highlight=False)


@data_app.command("prepare")
def prepare_command(
    name: str = typer.Argument(..., help="Data set name, e.g. mnist (see `initlab data list`)."),
    path: str | None = typer.Option(
        None, "--path", help="MNIST only: a folder of the four IDX files, a Keras mnist.npz, or mnist.pkl.gz."
    ),
    download: bool = typer.Option(
        True, "--download/--no-download", help="MNIST only: download from the mirrors if nothing local works."
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild the cached copy even if it checks out."),
) -> None:
    """Make a data set available offline: convert or generate it into the cache, checked by sha256."""
    from initlab import data as _data

    options: dict[str, object] = {}
    if name == "mnist":
        options = {"path": path, "download": download}
    elif path is not None:
        raise fail(f"--path applies to mnist only, not {name!r}.")
    # Show the library's progress messages (conversions, downloads, rebuilt files) unless -v already did more.
    logging.getLogger("initlab").setLevel(min(logging.getLogger("initlab").getEffectiveLevel(), logging.INFO))
    try:
        message = _data.prepare(name, force=force, **options)
    except (ValueError, TypeError, FileNotFoundError, ModuleNotFoundError) as exc:
        raise fail(str(exc)) from None
    console.print(message, highlight=False)
