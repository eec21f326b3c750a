"""``schoenholz2017``: Schoenholz, Gilmer, Ganguli and Sohl-Dickstein (2017), "Deep Information Propagation" (ICLR),
figures 5 and 6: a deep tanh network trains only where its depth L is below a small multiple of the correlation depth
scale ξ_c of mean-field theory (the paper overlays 6 ξ_c as the boundary of trainability), and since ξ_c diverges at
the order-to-chaos transition (χ₁ = 1), the trainable region extends deepest at the critical weight variance.

Setup: MNIST (``initlab.data.load("mnist", ...)``: 50,000 training, 10,000 validation and 10,000 test images,
standardized); fully connected tanh networks of L hidden layers of :data:`WIDTH` units and a linear 10-way output.
Every weight is N(0, σ_w²/fan_in) and every bias N(0, σ_b² = 0.05), as in the paper: the arm's scheme draws weights
N(0, 1/fan_in) (untruncated) and biases N(0, 0.05), and the study's ``scale`` axis c = σ_w multiplies every weight
tensor (never a bias), so that σ_w² = c². The grid: σ_w² from 1 to 4 in steps of 0.25 (:data:`FULL_WEIGHT_VARS`;
the critical σ_w²* = 1.761 for σ_b² = 0.05, :func:`initlab.theory.critical_weight_var`, is next to the column 1.75)
and L in :data:`FULL_DEPTHS`. Every network trains for the same budget, :data:`FULL_STEPS` steps of plain SGD
(learning rate :data:`LR`, batch :data:`BATCH`, cross-entropy), seed 0; the networks of one depth train as one
population. It runs as an initlab study in ``OUT/study`` (resumable).

The paper trains width-300 networks for up to 13,780 steps at learning rate 1e-3, to depth 300; two CPU cores allow
far less. Its figure 6 shows the trainable depth growing with training time, a multiple of ξ_c that reaches about 6
when trained longest. Here a search over learning rates (0.001, 0.003, 0.01; depths 50-200; 500-600 steps) found
0.003 best for the deep near-critical networks: at 0.01 no network of depth 100 trains in 500 steps (the deep
critical networks, whose gradients do not vanish, are unstable at that rate), and at 0.001 they learn too slowly.
With 0.003 and 600 steps the boundary of trainability is already close to 6 ξ_c (slightly beyond it, see below).
A first full run with a row at L = 150 found no column trained there (11-21%, the critical one 14%): at a fixed
budget the trainable depth is finite even at χ₁ = 1 (the paper's figure 6), so the grid stops at 100.

ξ_c(σ_w²) is :func:`initlab.theory.mean_field`'s (tanh, σ_b² = 0.05): 3.6 at σ_w² = 1, 15.8 at 1.5, ∞ at σ_w²*, 25
at 2, 11.8 at 2.5, 7.0 at 4; so 6 ξ_c runs from 22 layers (σ_w² = 1) and 42 (σ_w² = 4) to ∞.

Claims. A cell is *trained* when its final test accuracy is at least :data:`TRAINED` = 50% (quick form:
:data:`QUICK_TRAINED` = 30%, for its shorter budget). Chance is 10%: a network that learned nothing predicts one
class, 9.8-11.35% of the test set. In the full run below, 69 cells reach 56-87%, 25 are at 11-12%, and the ten
between (21-48%) all lie just beyond 6 ξ_c, partly trained. A diverged run (none seen) counts as not trained.

1. Trainability follows the depth scale: (a) a cell is trained exactly when L < 6 ξ_c in at least :data:`AGREEMENT`
   = 85% of the cells (the cells next to the boundary may fall either way); (b) every cell with L >= :data:`FAR` × 6 ξ_c
   is near chance, at most :data:`NEAR_CHANCE` = 20%; (c) every cell with L <= :data:`INSIDE` × 6 ξ_c is trained.
2. The trainable region is widest at the critical σ_w²: (a) the deepest trained depth over all columns is reached at
   the column nearest σ_w²* or a neighbour (quick form: at that column); (b) at that depth, the most accurate column
   is one of those; (c) the outermost columns, σ_w² = 1 (deep in the ordered phase) and 4 (deep in the chaotic
   phase), train only to half that depth or less (quick form: only the shallowest depth).
3. The figure is written: the accuracy grid over σ_w² (x) and L (y), with 6 ξ_c(σ_w²) from the theory on a fine grid
   of σ_w² and the critical σ_w²* drawn over it, as the paper's figure 5.

The quick form (the test suite's, about 40 s) trains three columns, σ_w² = 1, 1.75 and 4 (ordered, critical,
chaotic), at L = 10 and 60 for :data:`QUICK_STEPS` steps, and checks the same claims on that grid, with agreement
required in every cell: at L = 60, 6 ξ_c is 22 and 42 for the outer columns (so they must fail) and 2557 for 1.75;
at L = 10 all three must train. Measured: 47.8, 71.7, 58.3% at L = 10 and 11.35, 59.1, 11.35% at L = 60.

Measured, full form (seed 0; 18 min on the two cores while other jobs ran, 14 min of CPU time), final test
accuracy in %, rows L, columns σ_w² = 1, 1.25, ..., 4 (6 ξ_c: 22, 41, 95, 2557, 151, 91, 71, 61, 54, 50, 47, 44, 42)::

    L=100  11.3 11.3 57.6 65.4 64.4 43.6 11.3 11.3 11.3 11.2 11.6 11.7 11.3
    L=85   11.3 11.3 59.9 75.0 72.7 56.5 29.4 21.3 11.3 11.3 11.3 11.3 12.2
    L=70   11.3 22.2 74.7 82.6 79.6 74.4 65.8 48.0 11.3 11.3 11.3 11.3 11.3
    L=55   11.3 35.4 82.2 82.4 82.6 79.0 75.7 72.7 56.1 38.3 29.7 36.8 11.3
    L=40   11.3 72.9 85.2 86.2 85.0 83.8 82.1 76.1 75.5 73.5 60.1 61.0 62.3
    L=30   24.9 76.5 86.7 87.0 85.4 84.1 82.2 77.9 74.5 74.1 73.6 70.9 70.5
    L=20   57.8 82.7 86.6 87.3 86.5 85.4 84.2 82.9 81.2 75.3 75.7 70.6 67.5
    L=10   74.6 83.8 85.7 86.0 85.7 85.4 84.9 84.2 83.5 82.3 81.3 80.0 78.7

Claim 1: (a) 102 of 104 cells agree (98%; the two others, (1.5, 100) at 57.6% and (3, 55) at 56.1%, lie just
beyond 6 ξ_c = 95 and 54); (b) the 11 cells at L >= 12 ξ_c are at most 12.2%; (c) the 41 cells at L <= 3 ξ_c are at
least 65.4%. Claim 2: the deepest trained depth is 100, at σ_w² = 1.5, 1.75 and 2 (then 85 at 2.25, 70 at 2.5, ...,
40 at 4; 40 at 1.25 and 20 at 1), and at L = 100 the critical column is the most accurate (65.4%, then 64.4% at 2,
57.6% at 1.5, 43.6% at 2.25); σ_w² = 1 and 4 train to 20 and 40 layers (limit 50).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initlab.reproduce._base import Result, pyplot, register, save_figure
from initlab.store import Store
from initlab.studies import Arm, Study, run_study
from initlab.theory import critical_weight_var, mean_field
from initlab.training import TrainSettings

ACTIVATION = "tanh"
BIAS_VAR = 0.05
WIDTH = 128
LR = 0.003
BATCH = 64
#: The paper's boundary of trainability: L = 6 ξ_c.
BOUNDARY = 6.0
FULL_WEIGHT_VARS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0)
#: Deepest first: the populations start in this order, so the longest ones do not start last.
FULL_DEPTHS = (100, 85, 70, 55, 40, 30, 20, 10)
FULL_STEPS = 600
QUICK_WEIGHT_VARS = (1.0, 1.75, 4.0)
QUICK_DEPTHS = (60, 10)
QUICK_STEPS = 200
#: Points of the overlaid curve 6 ξ_c on the chaotic side (0.4 s each; the ordered side costs nothing).
FULL_CURVE_POINTS = 40
QUICK_CURVE_POINTS = 8
CHANCE = 10.0
#: A cell is trained when its final test accuracy (percent) is at least this (full form) ...
TRAINED = 50.0
#: ... or this (quick form, a third of the steps).
QUICK_TRAINED = 30.0
#: Claim 1: the trained cells agree with L < 6 ξ_c on at least this fraction of the grid ...
AGREEMENT = 0.85
#: ... cells with L >= FAR × 6 ξ_c are near chance: at most NEAR_CHANCE percent ...
FAR = 2.0
NEAR_CHANCE = 20.0
#: ... and cells with L <= INSIDE × 6 ξ_c are trained.
INSIDE = 0.5
SOURCE = (
    "Schoenholz, Gilmer, Ganguli & Sohl-Dickstein (2017), 'Deep Information Propagation', ICLR, figures 5-6 (tanh "
    "networks on MNIST train only where L < 6 xi_c; the trainable depth is largest at the critical sigma_w^2)"
)


def scheme() -> dict[str, Any]:
    """The arm's scheme: weights N(0, 1/fan_in) (the sweep's scale makes them N(0, σ_w²/fan_in)), biases
    N(0, σ_b²)."""
    bias = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": math.sqrt(BIAS_VAR)}}
    weights = {"class_name": "VarianceScaling",
               "config": {"scale": 1.0, "mode": "fan_in", "distribution": "untruncated_normal"}}  # fmt: skip
    return {"rules": [{"init": bias, "role": "bias", "label": f"biases N(0, {BIAS_VAR:g})"}], "base": weights}


def study(quick: bool) -> Study:
    weight_vars = QUICK_WEIGHT_VARS if quick else FULL_WEIGHT_VARS
    return Study(
        name="schoenholz2017" + ("-quick" if quick else ""),
        dataset="mnist",
        model=f"mlp:{WIDTH},{WIDTH};act={ACTIVATION}",
        arms=(Arm(ACTIVATION, scheme()),),
        seeds=(0,),
        train=TrainSettings(optimizer="sgd", lr=LR, batch_size=BATCH, epochs=1,
                            steps=QUICK_STEPS if quick else FULL_STEPS),
        diagnose_epochs=(),
        sweep={"scale": [math.sqrt(w) for w in weight_vars], "depth": list(QUICK_DEPTHS if quick else FULL_DEPTHS)},
    )  # fmt: skip


# -- theory --------------------------------------------------------------------------------------------------------
def boundary_depth(weight_var: float) -> float:
    """6 ξ_c at σ_w² = ``weight_var`` (tanh, σ_b² = 0.05): the paper's boundary of trainability (∞ at σ_w²*)."""
    return BOUNDARY * mean_field(ACTIVATION, weight_var, BIAS_VAR).xi_c


def boundary_curve(weight_vars: Iterable[float]) -> list[tuple[float, float]]:
    """``(σ_w², 6 ξ_c)`` at each of ``weight_vars``: the curve the figure overlays."""
    return [(w, boundary_depth(w)) for w in weight_vars]


def curve_weight_vars(lo: float, hi: float, chaotic_points: int) -> list[float]:
    """Where the overlaid curve is computed: 60 points from ``lo`` up to σ_w²* (the ordered side, cheap) and
    ``chaotic_points`` from σ_w²* to ``hi``, denser near σ_w²* where 6 ξ_c changes fastest."""
    critical = critical_weight_var(ACTIVATION, BIAS_VAR)
    ordered = [lo + (critical - lo) * i / 60 for i in range(60)]
    chaotic = [critical + (hi - critical) * (i / chaotic_points) ** 2 for i in range(1, chaotic_points + 1)]
    return ordered + chaotic


# -- the measured grid -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """Final test accuracy (percent) per cell ``(σ_w², L)``; ``None`` where a run diverged (or has no test value)."""

    weight_vars: tuple[float, ...]  # ascending
    depths: tuple[int, ...]  # ascending
    accuracy: dict[tuple[float, int], float | None]
    boundary: dict[float, float]  # 6 ξ_c per column

    def trained(self, cell: tuple[float, int], threshold: float) -> bool:
        value = self.accuracy[cell]
        return value is not None and value >= threshold

    def cells(self) -> list[tuple[float, int]]:
        return [(w, d) for w in self.weight_vars for d in self.depths]

    def deepest_trained(self, threshold: float) -> dict[float, int]:
        """Per column, the largest depth whose cell is trained (0 if none)."""
        return {w: max((d for d in self.depths if self.trained((w, d), threshold)), default=0)
                for w in self.weight_vars}  # fmt: skip

    def table(self) -> dict[str, dict[str, float | None]]:
        """The accuracies as ``{"L=DEPTH": {"SIGMA_W^2": value}}`` (JSON-friendly)."""
        return {f"L={d}": {f"{w:g}": self.accuracy[(w, d)] for w in self.weight_vars} for d in self.depths}


def read_grid(spec: Study, folder: Path) -> Grid:
    """The study's final test accuracies by cell, mean over seeds (``None`` if a seed has no test value)."""
    weight_of = {math.sqrt(w): w for w in (QUICK_WEIGHT_VARS + FULL_WEIGHT_VARS)}
    columns = spec.run_columns()
    values: dict[tuple[float, int], list[float | None]] = {}
    with Store.in_dir(folder, readonly=True) as store:
        for run in store.runs():
            where = columns[run.run_id]
            acc = 100 * run.test_metrics["test_acc"] if run.status == "finished" and run.test_metrics else None
            values.setdefault((weight_of[where["scale"]], int(where["depth"])), []).append(acc)
    accuracy: dict[tuple[float, int], float | None] = {}
    for cell, seeds in values.items():
        finished = [a for a in seeds if a is not None]
        accuracy[cell] = sum(finished) / len(finished) if finished and len(finished) == len(seeds) else None
    weight_vars = tuple(sorted({w for w, _ in accuracy}))
    depths = tuple(sorted({d for _, d in accuracy}))
    return Grid(weight_vars, depths, accuracy, dict(boundary_curve(weight_vars)))


# -- claims ----------------------------------------------------------------------------------------------------------
def _agreement(grid: Grid, threshold: float) -> tuple[int, list[str]]:
    """How many cells are trained exactly when L < 6 ξ_c, and the cells that disagree."""
    wrong = [f"({w:g}, {d})" for w, d in grid.cells() if grid.trained((w, d), threshold) != (d < grid.boundary[w])]
    return len(grid.cells()) - len(wrong), wrong


def _critical_column(grid: Grid) -> int:
    critical = critical_weight_var(ACTIVATION, BIAS_VAR)
    return min(range(len(grid.weight_vars)), key=lambda i: abs(grid.weight_vars[i] - critical))


def _check_depth_scale(result: Result, grid: Grid, threshold: float, fraction: float) -> None:
    """Claim 1: the trained cells are those with L < 6 ξ_c; far beyond it chance, well inside it trained."""
    agree, wrong = _agreement(grid, threshold)
    total = len(grid.cells())
    result.check(f"Trained (test accuracy >= {threshold:g}%) exactly where L < 6 xi_c",
                 f">= {fraction:.0%} of the cells", f"{agree}/{total} = {agree / total:.0%}"
                 + (f" (disagree: {', '.join(wrong)})" if wrong else ""), agree / total >= fraction)  # fmt: skip
    far = [c for c in grid.cells() if c[1] >= FAR * grid.boundary[c[0]]]
    worst = max((CHANCE if grid.accuracy[c] is None else grid.accuracy[c] for c in far), default=math.nan)
    result.check(f"Far beyond the boundary (L >= {FAR:g} x 6 xi_c) near chance", f"<= {NEAR_CHANCE:g}% in all "
                 f"{len(far)} cells", f"highest {worst:.1f}%", bool(far) and worst <= NEAR_CHANCE)  # fmt: skip
    inside = [c for c in grid.cells() if c[1] <= INSIDE * grid.boundary[c[0]]]
    lowest = min((grid.accuracy[c] or 0.0 for c in inside), default=math.nan)
    result.check(f"Well inside (L <= {INSIDE:g} x 6 xi_c) trained", f">= {threshold:g}% in all {len(inside)} "
                 "cells", f"lowest {lowest:.1f}%", bool(inside) and lowest >= threshold)  # fmt: skip


def _check_widest(result: Result, grid: Grid, threshold: float) -> None:
    """Claim 2: the trainable region reaches deepest at the critical column (in the full form: or a neighbour)."""
    deepest = grid.deepest_trained(threshold)
    column = _critical_column(grid)
    allowed = 0 if result.quick else 1
    near = [w for i, w in enumerate(grid.weight_vars) if abs(i - column) <= allowed]
    where = "σ_w² = " + " or ".join(f"{w:g}" for w in near)
    top = max(deepest.values())
    shown = ", ".join(f"{w:g}: {d}" for w, d in deepest.items())
    result.check("The trainable region extends deepest at the critical sigma_w^2 (1.761)",
                 f"the deepest trained depth is reached at {where}",
                 f"{top} layers at σ_w² = {', '.join(f'{w:g}' for w in grid.weight_vars if deepest[w] == top)} "
                 f"(deepest per column: {shown})", top > 0 and max(deepest[w] for w in near) == top)  # fmt: skip
    row = {w: grid.accuracy[(w, top)] or 0.0 for w in grid.weight_vars} if top else {}
    best = max(row, key=lambda w: row[w]) if row else math.nan
    ranked = ", ".join(f"{w:g}: {v:.1f}%" for w, v in sorted(row.items(), key=lambda kv: -kv[1])[:4])
    result.check(f"At that depth (L = {top}) the network is most accurate near the critical sigma_w^2",
                 f"best at {where}", f"best at σ_w² = {best:g} ({ranked}, ...)", best in near)  # fmt: skip
    outer = (deepest[grid.weight_vars[0]], deepest[grid.weight_vars[-1]])
    limit = grid.depths[0] if result.quick else top / 2
    result.check(f"Deep in the ordered (σ_w² = {grid.weight_vars[0]:g}) and chaotic (σ_w² = "
                 f"{grid.weight_vars[-1]:g}) phases the trainable depth is small",
                 f"<= {limit:g} layers", f"{outer[0]} and {outer[1]} layers", max(outer) <= limit)  # fmt: skip


# -- the reproduction ----------------------------------------------------------------------------------------------
@register("schoenholz2017", "Trainable depth of tanh networks over sigma_w^2 follows 6 xi_c (MNIST)", SOURCE,
          "about 10-20 minutes (13 sigma_w^2 x 8 depths up to 100, 600 SGD steps); the quick form about 40 s",
          heading="Deep information propagation: trainable depth and 6 xi_c (Schoenholz et al. 2017)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    spec = study(result.quick)
    folder = run_study(spec, out / "study")
    grid = read_grid(spec, folder)
    threshold = QUICK_TRAINED if result.quick else TRAINED
    _check_depth_scale(result, grid, threshold, 1.0 if result.quick else AGREEMENT)
    _check_widest(result, grid, threshold)
    edges = _edges(grid.weight_vars)
    points = QUICK_CURVE_POINTS if result.quick else FULL_CURVE_POINTS
    curve = boundary_curve(curve_weight_vars(edges[0], edges[-1], points))
    figure = _figure(out, grid, curve, threshold, spec.train.steps or 0)
    result.check("The figure shows the accuracy grid with 6 xi_c and the critical sigma_w^2 drawn over it",
                 "written", figure.name, figure.exists() and figure.stat().st_size > 0)  # fmt: skip
    result.figures = [figure]
    result.details = {
        "test_accuracy_percent": grid.table(),
        "six_xi_c": {f"{w:g}": grid.boundary[w] for w in grid.weight_vars},
        "deepest_trained": {f"{w:g}": d for w, d in grid.deepest_trained(threshold).items()},
        "critical_weight_var": critical_weight_var(ACTIVATION, BIAS_VAR),
        "trained_threshold_percent": threshold,
        "curve": curve,
        "steps": spec.train.steps,
        "study": str(folder),
    }
    return result


def _edges(values: Sequence[float]) -> list[float]:
    """Cell edges for a heatmap of ``values`` (ascending, positive, possibly unevenly spaced): the midpoints, and half
    a step beyond each end (but not below 0)."""
    mids = [(a + b) / 2 for a, b in itertools.pairwise(values)]
    if len(values) == 1:
        return [values[0] - 0.5, values[0] + 0.5]
    return [max(0.0, values[0] - (mids[0] - values[0])), *mids, values[-1] + (values[-1] - mids[-1])]


def _figure(out: Path, grid: Grid, curve: list[tuple[float, float]], threshold: float, steps: int) -> Path:
    """Test accuracy over σ_w² (x) and L (y), with 6 ξ_c(σ_w²) and σ_w²* drawn over it, as the paper's figure 5."""
    import numpy as np

    plt = pyplot()
    xs, ys = _edges(grid.weight_vars), _edges([float(d) for d in grid.depths])
    values = np.array([[np.nan if grid.accuracy[(w, d)] is None else grid.accuracy[(w, d)] for w in grid.weight_vars]
                       for d in grid.depths])  # fmt: skip
    fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.6")
    mesh = ax.pcolormesh(xs, ys, np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=100, shading="flat")
    fig.colorbar(mesh, ax=ax, label="final test accuracy (%)")
    for (w, d), value in grid.accuracy.items():
        text = "n/a" if value is None else f"{value:.0f}"
        bold = "bold" if grid.trained((w, d), threshold) else "normal"
        ax.text(w, d, text, ha="center", va="center", fontsize=8, color="white", fontweight=bold)
    cx = [w for w, b in curve if math.isfinite(b)]
    ax.plot(cx, [b for _, b in curve if math.isfinite(b)], "w--", linewidth=2, label=r"6 $\xi_c$ (mean-field theory)")
    critical = critical_weight_var(ACTIVATION, BIAS_VAR)
    ax.axvline(critical, color="tab:red", linestyle=":", linewidth=2, label=f"critical σ_w² = {critical:.3f} (χ₁ = 1)")
    ax.set(xlim=(xs[0], xs[-1]), ylim=(ys[0], ys[-1]), xlabel="weight variance σ_w²", ylabel="depth L (hidden layers)",
           title=f"tanh MLP (width {WIDTH}, σ_b² = {BIAS_VAR:g}) on MNIST after {steps} SGD steps: test accuracy "
                 f"(bold: >= {threshold:g}%)")  # fmt: skip
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, facecolor="0.35", labelcolor="white")
    return save_figure(fig, out / "schoenholz2017.png")
