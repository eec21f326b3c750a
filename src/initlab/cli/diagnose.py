"""``initlab diagnose``: initialize a model and diagnose it on one batch of real data, or compare schemes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from initlab.cli._app import app, console, fail

if TYPE_CHECKING:
    import torch

    from initlab.data import Dataset
    from initlab.diagnostics import Comparison, Diagnosis


def _batch(dataset: str, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, Dataset]:
    """``batch`` samples of the training split, drawn without replacement by a generator seeded with ``seed``."""
    import torch

    from initlab import data as datasets

    ds = datasets.load(dataset, split="train")
    gen = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(ds), generator=gen)[: min(batch, len(ds))]
    return ds.x[index], ds.y[index], ds


@app.command("diagnose")
def diagnose_command(
    model: str = typer.Option("keras-mnist", help="Model spec, e.g. keras-mnist or mlp:256,128;act=tanh."),
    scheme: str = typer.Option("auto", help="Scheme or initializer; several, comma-separated, side by side."),
    dataset: str = typer.Option("mnist", help="Data set the batch comes from: mnist, digits, mnist1d, circles, ..."),
    batch: int = typer.Option(256, min=2, help="Batch size (samples of the training split)."),
    seed: int = typer.Option(0, min=0, help="Seed of the initialization and of the batch's draw."),
    as_json: bool = typer.Option(False, "--json", help="Print the diagnosis as JSON instead of tables."),
    report: bool = typer.Option(
        False, "--report", help="Also write an HTML report (figures, findings, tables) and print its path."
    ),
    out: Path = typer.Option(
        Path("diagnosis-report"), help="With --report: the report's folder, or a path ending in .html."
    ),
) -> None:
    """Initialize a model and diagnose it on one batch: per-layer statistics, Jacobian spectrum, findings."""
    from initlab import models
    from initlab.diagnostics import compare_diagnoses, diagnose
    from initlab.schemes import initialize

    names = [s.strip() for s in scheme.split(",") if s.strip()]
    if not names:
        raise fail("--scheme is empty; give a scheme such as auto, or several: auto,glorot_uniform,zeros.")
    try:
        x, y, ds = _batch(dataset, batch, seed)
        net = models.build(model, input_shape=ds.input_shape, num_classes=ds.num_classes)
        described = models.describe(model)
        if len(names) == 1:
            initialize(net, names[0], seed=seed, data=x)
            label = f"{described} / {names[0]} on {dataset}"
            result: Diagnosis | Comparison = diagnose(net, x, targets=y, label=label)
            title = label
        else:
            result = compare_diagnoses(net, names, x, targets=y, seed=seed)
            title = f"{described} on {dataset}, {len(names)} schemes (seed {seed})"
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        typer.echo(result.to_json())
    else:
        console.print(result)
    if report:
        from initlab.report import build_diagnosis_report

        try:
            path = build_diagnosis_report(result, out, title=title)
        except OSError as exc:
            raise fail(f"cannot write the report to {out}: {exc}") from None
        # With --json, stdout stays one JSON document; the path goes to stderr.
        typer.echo(str(path), err=as_json)
