"""``initlab audit``: is a model initialized the way you think? Exit 1 on an error-level finding, for CI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from initlab.cli._app import app, console, fail, os_failure

if TYPE_CHECKING:
    from torch import nn

FORMATS = ("text", "json", "html")
DEFAULT_HTML = Path("audit.html")


def _shape(text: str) -> tuple[int, ...]:
    """``"1,28,28"`` (or ``"1x28x28"``) -> ``(1, 28, 28)``; ValueError unless every part is a positive integer."""
    parts = [p.strip() for p in re.split(r"[,x×]", text.strip())]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"--input-shape {text!r} is not a shape: give one sample's shape as positive integers, "
                         "e.g. 784 or 1,28,28.")  # fmt: skip
    return shape


def _build(model: str, input_shape: tuple[int, ...], num_classes: int, seed: int) -> nn.Module:
    """The model of a spec (``mlp:64,64``) or an import path (``package.module:factory``), built with ``seed``."""
    import torch

    from initlab import factory, models

    torch.manual_seed(seed)
    if models.is_spec(model):
        return models.build(model, input_shape=input_shape, num_classes=num_classes)
    if not factory.is_import_path(model):  # pragma: no cover  (is_spec says every non-import-path is a spec)
        raise ValueError(f"--model {model!r} is neither a model spec nor an import path package.module:factory.")
    return factory.load_factory(model)(input_shape, num_classes)


@app.command("audit")
def audit_command(
    model: str = typer.Option(
        ..., help="Model spec (mlp:64,64, cnn:16,32;head=64) or import path package.module:factory."
    ),
    weights: Path | None = typer.Option(None, help="A state dict file (torch.save(model.state_dict())) to load first."),
    scheme: str | None = typer.Option(
        None, help="The scheme the model should follow (he_normal, keras, auto, torch, ...); default: torch's own."
    ),
    input_shape: str = typer.Option("1,28,28", help="One sample's shape, for building the model (MNIST's default)."),
    num_classes: int = typer.Option(10, min=1, help="Number of outputs, for building the model."),
    fmt: str = typer.Option("text", "--format", help="text (tables), json or html."),
    out: Path | None = typer.Option(None, help=f"File for json (default: stdout) or html (default: {DEFAULT_HTML})."),
    seed: int = typer.Option(0, min=0, help="Seed of torch's generator while the model is built."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 on warnings too, not only on errors."),
) -> None:
    """Audit a model's initialization: every parameter's role, shape, fans, mean, std, min and max, compared with
    what the scheme (or torch's defaults) would draw by a χ² test on its variance, and the findings (NaN, zero or
    constant weights, duplicated units, a std far from every fan-based rule, residual projections not scaled for
    depth, tied and uncovered parameters). Exit status 0 without error-level findings, 1 with some, 2 on bad input."""
    from initlab.checks import check_choice

    try:
        check_choice("--format", fmt, FORMATS)
        if out is not None and fmt == "text":
            raise ValueError("--out is for --format json or html; text goes to the terminal.")
        shape = _shape(input_shape)
    except ValueError as exc:
        raise fail(str(exc)) from None
    from initlab.auditing import audit, load_weights

    try:
        net = _build(model, shape, num_classes, seed)
        if weights is not None:
            load_weights(net, weights)
        result = audit(net, scheme)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    title = f"initlab audit: {model}" + (f" ({weights.name})" if weights is not None else "")
    try:
        if fmt == "json" and out is None:
            typer.echo(result.to_json())
        elif fmt == "json":
            from initlab.fileio import write_atomic

            typer.echo(str(write_atomic(out, result.to_json() + "\n")))  # type: ignore[arg-type]
        elif fmt == "html":
            typer.echo(str(result.save_html(out or DEFAULT_HTML, title=title)))
        else:
            console.print(escape(title), highlight=False)
            console.print(result)
    except OSError as exc:
        raise os_failure(exc, out) from None
    raise typer.Exit(result.exit_code(strict=strict))
