"""``initlab theory``: the mean-field quantities of a deep random network, and its phase diagram."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from initlab.cli._app import app, console, fail

if TYPE_CHECKING:
    from initlab.theory import MeanField

# The phase diagram's σ_b² axis: at least [0, 0.5], and twice the given bias variance; the critical line's points.
_MIN_BIAS_RANGE = 0.5
_LINE_POINTS = 41


def _number(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.6g}"


def _table(result: MeanField, critical: float) -> object:
    from rich.table import Table

    table = Table(title=f"mean field: {result.activation}, σ_w² = {result.weight_var:g}, σ_b² = {result.bias_var:g}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    colour = {"ordered": "cyan", "chaotic": "red", "critical": "green"}[result.phase]
    rows = [
        ("q*", _number(result.q_star), "fixed point of the length map (pre-activations' mean square)"),
        ("χ₁", _number(result.chi_1), "σ_w² E[φ'(√q* z)²]: < 1 ordered, > 1 chaotic"),
        ("c*", _number(result.c_star), "fixed point of the correlation map"),
        ("χ_c", _number(result.chi_c), "slope of the correlation map at c*"),
        ("ξ_q", _number(result.xi_q), "depth scale of the length's approach to q*"),
        ("ξ_c", _number(result.xi_c), "depth scale of the correlation's approach to c*"),
        ("phase", f"[{colour}]{result.phase}[/]", "by χ₁"),
        (f"critical σ_w² at σ_b² = {result.bias_var:g}", _number(critical), "where χ₁ = 1 (the edge of chaos)"),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _draw(path: Path, activation: str, param: float | None, weight_var: float, bias_var: float, phase: str) -> Path:
    """The phase diagram: the critical line over σ_b², ordered and chaotic regions shaded, the given point marked."""
    import matplotlib

    matplotlib.use("Agg")  # headless: never needs a display
    import matplotlib.pyplot as plt
    import numpy as np

    from initlab.theory import critical_line

    top = max(_MIN_BIAS_RANGE, 2.0 * bias_var)
    # Denser near σ_b² = 0, where the line of a smooth odd activation (tanh) leaves σ_b² = 0 steeply.
    line = critical_line(activation, (top * np.linspace(0.0, 1.0, _LINE_POINTS) ** 2).tolist(), param=param)
    x = np.array([w for w, _ in line])
    y = np.array([b for _, b in line])
    right = max(1.5 * weight_var, 1.25 * float(x.max()))
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    try:
        ax.fill_betweenx(y, 0.0, x, color="tab:blue", alpha=0.18, label="ordered (χ₁ < 1)")
        ax.fill_betweenx(y, x, right, color="tab:red", alpha=0.18, label="chaotic (χ₁ > 1)")
        ax.plot(x, y, color="black", linewidth=2.0, label="critical line (χ₁ = 1)")
        ax.plot([weight_var], [bias_var], marker="*", markersize=14, color="gold", markeredgecolor="black",
                linestyle="none", label=f"σ_w² = {weight_var:g}, σ_b² = {bias_var:g}: {phase}")  # fmt: skip
        ax.set_xlim(0.0, right)
        ax.set_ylim(0.0, top)
        ax.set_xlabel("σ_w²  (weight variance × fan_in)")
        ax.set_ylabel("σ_b²  (bias variance)")
        name = activation if param is None else f"{activation}({param:g})"
        ax.set_title(f"Mean-field phase diagram: {name}")
        ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


@app.command("theory")
def theory_command(
    act: str = typer.Option("tanh", "--act", help="Activation: relu, leaky_relu, tanh, sigmoid, erf, selu, elu, ..."),
    weight_var: float = typer.Option(1.0, "--weight-var", help="σ_w²: weights are N(0, σ_w²/fan_in)."),
    bias_var: float = typer.Option(0.0, "--bias-var", help="σ_b²: biases are N(0, σ_b²)."),
    param: float | None = typer.Option(None, "--param", help="leaky_relu's negative slope or elu's alpha."),
    plot: Path | None = typer.Option(None, "--plot", help="Also draw the phase diagram into this PNG file."),
) -> None:
    """Mean-field signal propagation (Poole et al. 2016; Schoenholz et al. 2017): q*, χ₁, c*, the depth scales, the
    phase, and the critical weight variance for the given bias variance."""
    from initlab.theory import critical_weight_var, mean_field, nonlinearity

    try:
        phi = nonlinearity(act, param)
        result = mean_field(phi, weight_var, bias_var)
        critical = critical_weight_var(phi, bias_var)
    except (ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    console.print(_table(result, critical))
    if plot is not None:
        try:
            path = _draw(plot, act.strip().lower(), param, weight_var, bias_var, result.phase)
        except OSError as exc:
            raise fail(f"cannot write the phase diagram to {plot}: {exc}") from None
        console.print(f"phase diagram: {path}")
