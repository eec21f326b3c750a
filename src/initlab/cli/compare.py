"""``initlab compare`` (the main job) and ``initlab export``.

The command only parses: the study is the defaults (:meth:`Study.quick_article`) or a TOML file, with the flags
given laid over it (:meth:`Study.with_overrides`); :func:`initlab.studies.check_study` checks it and the executor
before anything is printed, and :func:`initlab.studies.run_study` runs it. torch and the study engine are imported
when the command runs, not when the CLI starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Column, Table

from initlab.cli._app import app, console, fail, os_failure, readable_store

if TYPE_CHECKING:
    from initlab.studies import Progress as StudyProgress
    from initlab.studies import Study

DEFAULT_ROOT = Path("initlab-studies")
DB_FILE = "study.sqlite"  # the Store's file in a study folder (initlab.store.DB_FILENAME), checked without importing it


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine; use --device cpu.")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"--device {device!r} is not allowed; choose auto, cpu or cuda[:N].")
    return device


#: Axes that are a sweep even with one value: they have no setting of their own outside a sweep.
_SWEEP_ONLY = ("scale", "width", "depth")


def _axes(train: dict[str, Any], **flags: tuple[str | None, type]) -> dict[str, list[Any]]:
    """Read comma-separated flag values: one value of a training setting goes into ``train``; several (or any value
    of scale, width, depth) make a sweep axis, returned. ValueError names a value that is not a number."""
    sweep: dict[str, list[Any]] = {}
    for name, (text, kind) in flags.items():
        if text is None:
            continue
        values = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            try:
                values.append(kind(part))
            except ValueError:
                flag = "--" + name.replace("_", "-")
                raise ValueError(
                    f"{flag} {text!r}: {part!r} is not a{'n integer' if kind is int else ' number'}."
                ) from None
        if not values:
            raise ValueError(f"--{name.replace('_', '-')} is empty.")
        if len(values) == 1 and name not in _SWEEP_ONLY:
            train[name] = values[0]
        else:
            sweep[name] = values
    return sweep


def _resumed(resume: Path, given: dict[str, Any]) -> Study:
    """The study recorded in the folder ``resume``; no study-defining flag may be given with it."""
    from initlab.studies import Store, Study

    flags = [k for k, v in given.items() if v is not None]
    if flags:
        raise ValueError(f"--resume continues a study as it was recorded; drop {', '.join('--' + g for g in flags)}.")
    if not (resume / DB_FILE).exists():
        raise ValueError(f"--resume {resume}: no study there (no {DB_FILE}).")
    with Store.in_dir(resume, readonly=True) as store:
        return Study.from_config(store.study().config)


def _data_flags(
    dataset: str | None, data_file: Path | None, target: str | None, task: str | None
) -> tuple[str | None, dict[str, Any] | None]:
    """``--data FILE [--target COLUMN] [--task T]`` as the study's dataset and its options; ``(dataset, None)``
    without --data."""
    if data_file is None:
        if target is not None or task is not None:
            raise ValueError("--target and --task go with --data FILE (your own data file).")
        return dataset, None
    if dataset is not None:
        raise ValueError("give either --dataset NAME (a built-in data set) or --data FILE (your own), not both.")
    options = {k: v for k, v in {"target": target, "task": task}.items() if v is not None}
    return str(data_file), options


#: Exit status of ``compare`` when a run failed, and with ``--strict`` when one diverged (2 is bad input).
EXIT_FAILED = 3
EXIT_DIVERGED = 4


def _swept(text: str, *names: str) -> Any:
    """A flag that takes one value or several, comma-separated; several sweep that setting."""
    return typer.Option(None, *names, metavar="V[,V...]", help=f"{text} Several values sweep it.")


@app.command("compare")
def compare_command(
    dataset: str | None = typer.Option(None, help="Data set: mnist, digits, mnist1d, circles, moons, ..."),
    data_file: Path | None = typer.Option(
        None, "--data", help="Your data: an .npz (x_train, y_train, x_test, y_test, or x and y), a .csv or .parquet."
    ),
    target_column: str | None = typer.Option(None, "--target", help="The label column of a CSV or Parquet --data."),
    task: str | None = typer.Option(None, help="auto (default), classification or regression, for --data."),
    model: str | None = typer.Option(None, help="Model spec, e.g. keras-mnist or mlp:256,128;act=tanh."),
    inits: str | None = typer.Option(None, help="Comma-separated arms (initializers or schemes), or 'all'."),
    seeds: int | None = typer.Option(None, min=1, help="Number of seeds (0..N-1)."),
    epochs: int | None = typer.Option(None, min=1, help="Epochs per run."),
    steps: int | None = typer.Option(None, min=1, help="Optimizer steps per run (instead of epochs)."),
    # Settings that take several comma-separated values, which make a sweep (initlab.studies.sweep).
    lr: str | None = _swept("Learning rate, e.g. 1e-3 or 1e-3,3e-3,1e-2."),
    batch_size: str | None = _swept("Batch size.", "--batch-size"),
    optimizer: str | None = _swept("sgd, adam, adamw or rmsprop."),
    momentum: str | None = _swept("Momentum (SGD, RMSprop)."),
    scale: str | None = _swept("Initialization scale c: the weights times c after the scheme (always a sweep)."),
    width: str | None = _swept("Hidden width, for a model of equal hidden widths (always a sweep)."),
    depth: str | None = _swept("Number of hidden layers, for a model of equal widths (always a sweep)."),
    parametrization: str | None = typer.Option(
        None, metavar="P[,P...]", help="standard, mup, or standard,mup: every arm under each (muP: Yang et al. 2022)."
    ),
    schedule: str | None = typer.Option(None, help="constant, step or cosine."),
    loss: str | None = typer.Option(None, help="cross_entropy, bce or mse."),
    precision: str | None = typer.Option(None, help="float32 or bf16 (mixed precision matmuls)."),
    target: float | None = typer.Option(
        None, "--target-accuracy", help="Validation accuracy whose first epoch is reported (default 0.97)."
    ),
    workers: int | None = typer.Option(None, min=1, help="Worker processes (default: one per core)."),
    name: str | None = typer.Option(None, help="Study name."),
    out: Path | None = typer.Option(None, help="Study folder (default: initlab-studies/NAME-HASH)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda[:N]."),
    executor: str = typer.Option("local", help="local (worker processes here) or ray (tasks on a Ray cluster)."),
    address: str | None = typer.Option(
        None, help="Ray cluster to use with --executor ray: ray://HOST:10001 or auto (default: start a local one)."
    ),
    config: Path | None = typer.Option(None, "--config", help="A study TOML file; flags override it."),
    resume: Path | None = typer.Option(None, help="Continue the study in this folder."),
    no_report: bool = typer.Option(False, "--no-report", help="Do not build the HTML report at the end."),
    strict: bool = typer.Option(False, "--strict", help=f"Exit with {EXIT_DIVERGED} when a run diverged."),
) -> None:
    """Train a model under many initializations x seeds and rank them (default: the MNIST article, quick form).

    Exit status: 0 when every run finished or diverged (a divergence is a result), 2 for bad input, 3 when a run
    failed (an error, not a result: see the message and resume), 4 with --strict when a run diverged."""
    from initlab.studies import Study, check_study
    from initlab.studies.build import pinned

    train: dict[str, Any] = dict(epochs=epochs, steps=steps, schedule=schedule, loss=loss, precision=precision,
                                 target_accuracy=target)  # fmt: skip
    try:
        # Each a comma-separated list and what its values are.
        flags = dict(lr=(lr, float), batch_size=(batch_size, int), optimizer=(optimizer, str), momentum=(momentum,
                     float), scale=(scale, float), width=(width, int), depth=(depth, int))  # fmt: skip
        sweep = _axes(train, **flags)
        dev = _resolve_device(device)
        dataset, dataset_options = _data_flags(dataset, data_file, target_column, task)
        if resume is not None:
            given = dict(dataset=dataset, model=model, inits=inits, seeds=seeds, epochs=epochs, steps=steps,
                         parametrization=parametrization)  # fmt: skip
            given |= {k.replace("_", "-"): v for k, v in sweep.items()}
            study, folder = _resumed(resume, {**given, "config": config}), resume
        else:
            base = Study.from_toml(config, inits=inits) if config is not None else Study.quick_article()
            study = base.with_overrides(name=name, dataset=dataset, dataset_options=dataset_options, model=model,
                                        inits=inits, seeds=seeds, train=train, sweep=sweep,
                                        parametrization=parametrization)  # fmt: skip
            study = pinned(study)  # a data file: its absolute path and content hash, part of the folder's name
            folder = out or DEFAULT_ROOT / f"{study.name}-{study.fingerprint()}"
        check_study(study, executor=executor, address=address)  # stop on a typo before anything is printed
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    except ImportError as exc:
        raise fail(str(exc)) from None
    _run(study, folder, workers=workers, device=dev, executor=executor, address=address)
    _finish(folder, report=not no_report, strict=strict)


def _finish(folder: Path, *, report: bool, strict: bool) -> None:
    """The ranked table, the report, and the exit status (see ``compare``)."""
    failed, diverged = show_summary(folder)
    if report:
        from initlab.report import build_report  # matplotlib is imported only when a report is built

        console.print(f"report: {build_report(folder)}", highlight=False, soft_wrap=True)
    if failed:
        raise fail(f"{failed} run(s) failed; fix the cause named above and resume with --resume {folder}.",
                   EXIT_FAILED)  # fmt: skip
    if strict and diverged:
        raise fail(f"{diverged} run(s) diverged (--strict).", EXIT_DIVERGED)


def _run(study: Study, folder: Path, *, workers: int | None, device: str, executor: str, address: str | None) -> None:
    """Run the study with a progress bar of run-epochs."""
    from initlab.studies import run_study

    console.print(
        f"[bold]{escape(study.name)}[/]: {len(study.arms)} arms x {len(study.seeds)} seeds on {escape(study.dataset)}"
        f" with {escape(study.model)}, {study.train.optimizer} lr {study.train.lr:g}, batch {study.train.batch_size}"
        f" ({device}, {study.train.precision})"
        + (", sweeping " + ", ".join(f"{k} x{len(v)}" for k, v in study.sweep.items()) if study.sweep else "")
    )
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("run-epochs"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("training", total=None)

        def on_progress(p: StudyProgress) -> None:
            desc = f"runs {p.finished_runs}/{p.total_runs} done"
            if p.diverged_runs:
                desc += f", {p.diverged_runs} diverged"
            if p.failed_runs:
                desc += f", [red]{p.failed_runs} failed[/]"
            bar.update(task, total=p.total_epochs, completed=p.done_epochs, description=desc)

        import sqlite3

        try:
            run_study(study, folder, workers=workers, device=device, on_progress=on_progress,
                      executor=executor, address=address)  # type: ignore[arg-type]  # fmt: skip
        except (ValueError, TypeError, RuntimeError, FileNotFoundError) as exc:
            raise fail(str(exc)) from None
        except (OSError, sqlite3.OperationalError) as exc:
            raise os_failure(exc, folder) from None


def show_summary(folder: Path) -> tuple[int, int]:
    """Print the ranked table of the study in ``folder`` and where it is; return the numbers of failed and diverged
    runs."""
    from initlab.studies import Store, summarize
    from initlab.studies.summary import best_per_arm
    from initlab.studies.verdict import verdict

    with Store.in_dir(folder, readonly=True) as store:
        rows = summarize(store)
        found = verdict(store, rows)
        config = store.study().config
        target = config["train"]["target_accuracy"]
        failed = [r for r in store.runs() if r.status == "failed"]
        diverged = sum(r.status == "diverged" for r in store.runs())
    best = best_per_arm(config, rows) if config.get("sweep") else {}
    ranked = "configurations" if config.get("sweep") else "initializers"
    right = {"justify": "right"}
    columns = [Column("#", **right), Column("arm"), Column("test acc %", **right), Column("test loss", **right),
               Column(f"epochs to {target:.0%} val", **right), Column("diverged", **right)]  # fmt: skip
    for column in columns:
        column.overflow = "fold"  # labels wrap, never cut
    by = "test accuracy" if any(r.test_acc.n for r in rows) or not rows else "test loss (regression)"
    table = Table(*columns, title=f"{ranked} ranked by {by} (mean ± std over seeds)")
    for r in rows:
        reach = "never" if r.reached_target == 0 else r.epochs_to_target.text(digits=1)
        if 0 < r.reached_target < r.runs:
            reach += f" ({r.reached_target}/{r.runs})"
        table.add_row(
            str(r.rank),
            escape(r.arm),
            r.test_acc.text(100.0),
            r.test_loss.text(digits=3),
            reach,
            f"{r.diverged}/{r.runs}" if r.diverged else "",
        )
    console.print(table)
    for arm, row in best.items():
        console.print(f"best of {escape(arm)}: {escape(row.arm)}, {row.test_acc.text(100.0)}%", highlight=False)
    for line in found.sentences():
        console.print(escape(line), highlight=False, soft_wrap=True)
    for r in failed:
        console.print(f"[red]failed[/] {escape(r.run_id)}: {escape(r.message or '')}")
    console.print(f"study folder: {folder}  (resume with: initlab compare --resume {folder})")
    return len(failed), diverged


@app.command("export")
def export_command(
    study_dir: Path = typer.Argument(..., help="A study folder."),
    fmt: str = typer.Option("csv", "--format", help="csv or json."),
    out: Path | None = typer.Option(None, help="Where to write (default: the study folder)."),
) -> None:
    """Export a study's runs and per-epoch metrics to CSV files or one JSON file.

    With a sweep, every row also has a column per sweep axis with its run's value, and the index of its run's
    population (the runs that trained together), so that the files can be grouped by any axis on their own.
    """
    if not (study_dir / DB_FILE).exists():
        raise fail(f"{study_dir}: no study there (no {DB_FILE}).")
    try:
        _export(study_dir, fmt, out)
    except (ValueError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise os_failure(exc, out or study_dir) from None


def _export(study_dir: Path, fmt: str, out: Path | None) -> None:
    """Write the export files and print their paths."""
    from initlab.studies import Store, Study

    with readable_store(study_dir), Store.in_dir(study_dir, readonly=True) as store:
        config = store.study().config
        try:  # with a sweep, a column per axis and the population (Study.run_columns); a plain study as it was
            columns = Study.from_config(config).run_columns() if config.get("sweep") else None
        except (ValueError, TypeError) as exc:
            raise fail(f"{study_dir}: the recorded study cannot be read back: {exc}") from None
        if fmt == "csv":
            paths = store.export_csv(out or study_dir, run_columns=columns)
        elif fmt == "json":
            paths = [store.export_json(out or study_dir / "study.json", run_columns=columns)]
        else:
            raise fail(f"--format {fmt!r} is not allowed; choose csv or json.")
    for p in paths:
        console.print(str(p))
