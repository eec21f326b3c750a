"""What the report shows of a study with a sweep: one metric per configuration, as heatmap grids, lines and tables.

A *configuration* is an arm at a grid point (:class:`~initlab.report._collect.Configuration`); its runs are its
seeds. Each run contributes the chosen metric at its end (:data:`METRICS`): the test metrics that a finished run
stores, or the last epoch's training loss or validation accuracy. Only finished runs count: a diverged run has no
final value (it is counted, and marked in the figures), and a pending or failed one has none yet. Everything here is
computed from :class:`~initlab.report._collect.StudyData`, so the drawing code (:mod:`initlab.report._sweep_figures`)
reads plain numbers and a test can check them against the Store.

When a figure shows fewer axes than the sweep has, each point is the *best* configuration over the axes not shown
(highest mean accuracy, lowest mean loss), and the caption says so.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from initlab.checks import check_choice, did_you_mean
from initlab.report._collect import Configuration, StudyData
from initlab.store import RunRecord
from initlab.studies.summary import best_per_arm

#: The metrics a sweep's figures can show; ``initlab report --metric`` takes these names.
MetricName = Literal["test_acc", "test_loss", "val_acc", "train_loss"]

# With more panels than this, a heatmap shows each arm's best over the axes it does not draw instead of a panel per
# value of them: past a dozen panels the figure is too large to read on one screen.
_MAX_HEATMAP_PANELS = 12
# A numeric axis whose positive values span at least this ratio is drawn on a log scale (a decade: lr, scale).
LOG_RATIO = 10.0
# The lines figure draws a panel per value of the second axis when it has at most this many values.
_MAX_LINE_PANELS = 6

CellState = Literal["ok", "some_diverged", "diverged", "unfinished", "no_value"]


@dataclass(frozen=True)
class Metric:
    """A metric a sweep's figures can show, how it is written, and which direction is better."""

    name: str
    title: str
    unit: str  # "%" for accuracies (values times 100), "" otherwise
    higher_is_better: bool

    @property
    def factor(self) -> float:
        """What a stored value is multiplied by for display: accuracies are shown in percent."""
        return 100.0 if self.unit == "%" else 1.0

    def text(self, value: float) -> str:
        """A displayed value (already multiplied by :attr:`factor`), short enough for a heatmap cell."""
        return f"{value:.1f}" if self.unit == "%" else f"{value:.3g}"

    def label(self) -> str:
        """The axis or colour-bar label: the title and the unit."""
        return f"{self.title} (%)" if self.unit else self.title


METRICS: dict[str, Metric] = {
    "test_acc": Metric("test_acc", "final test accuracy", "%", True),
    "test_loss": Metric("test_loss", "final test loss", "", False),
    "val_acc": Metric("val_acc", "validation accuracy at the last epoch", "%", True),
    "train_loss": Metric("train_loss", "training loss at the last epoch", "", False),
}


@dataclass(frozen=True)
class SweepView:
    """What the sweep's figures show: a metric, the heatmap's x axis, and its y axis (``None``: the sweep has one
    axis, and the heatmap's rows are the arms)."""

    metric: str
    x: str
    y: str | None


def choose_view(
    sweep: Mapping[str, Sequence[Any]], metric: str = "test_acc", x: str | None = None, y: str | None = None
) -> SweepView | None:
    """The view of a study whose sweep has the axes ``sweep`` (``None`` without a sweep); ``x`` and ``y`` default
    to the first two axes. ValueError names a metric or axis that does not exist, and the closest one."""
    check_choice("metric", metric, tuple(METRICS))
    axes = list(sweep)
    for name, value in (("x", x), ("y", y)):
        if value is None:
            continue
        if not axes:
            raise ValueError(f"{name}={value!r}: the study has no sweep, so there is no heatmap to choose axes for.")
        if value not in axes:
            raise ValueError(
                f"{name}={value!r} is not an axis of the study's sweep; its axes: {', '.join(axes)}."
                + did_you_mean(value, axes)
            )
    if not axes:
        return None
    if x is not None and x == y:
        raise ValueError(f"x and y are both {x!r}; choose two different axes of the sweep ({', '.join(axes)}).")
    if len(axes) == 1:
        if y is not None:
            raise ValueError(f"y={y!r}: the sweep has one axis ({axes[0]}), so the heatmap's rows are the arms.")
        return SweepView(metric=metric, x=axes[0], y=None)
    x = x if x is not None else next(a for a in axes if a != y)
    y = y if y is not None else next(a for a in axes if a != x)
    return SweepView(metric=metric, x=x, y=y)


@dataclass(frozen=True)
class Cell:
    """One configuration's runs, as a heatmap cell or a point of a line: the metric of every finished run."""

    label: str  # the configuration's label
    values: tuple[float, ...]  # the metric of each finished run that has one (stored units), in seed order
    runs: int
    finished: int
    diverged: int

    @property
    def mean(self) -> float:
        """The mean over the finished runs (NaN when there is none); the same mean as the ranked table's."""
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def low(self) -> float:
        """The lowest value over the finished runs (the band's lower edge); NaN when there is none."""
        return min(self.values) if self.values else math.nan

    @property
    def high(self) -> float:
        """The highest value over the finished runs (the band's upper edge); NaN when there is none."""
        return max(self.values) if self.values else math.nan

    @property
    def state(self) -> CellState:
        """How a figure marks it: a value ("ok"), a value of which some runs diverged, every finished-or-diverged
        run diverged ("diverged"), no run finished yet (pending or failed), or finished runs without this metric."""
        if self.values:
            return "some_diverged" if self.diverged else "ok"
        if self.diverged:
            return "diverged"
        return "no_value" if self.finished else "unfinished"


def _value(data: StudyData, run: RunRecord, metric: str) -> float | None:
    """The metric of one run at its end: None unless the run finished and the value is a finite number."""
    if run.status != "finished":
        return None
    if metric.startswith("test_"):
        value = (run.test_metrics or {}).get(metric)
    else:
        epochs = data.epochs.get(run.run_id, [])
        value = getattr(epochs[-1], metric) if epochs else None
    return float(value) if value is not None and math.isfinite(value) else None


def cells(data: StudyData, metric: str) -> dict[str, Cell]:
    """Every configuration's :class:`Cell` for ``metric``, by label, in the study's order."""
    by_label: dict[str, list[RunRecord]] = {}
    for run in data.runs:
        by_label.setdefault(run.arm, []).append(run)
    out = {}
    for c in data.configurations:
        runs = sorted(by_label.get(c.label, []), key=lambda r: r.seed)
        values = [_value(data, r, metric) for r in runs]
        out[c.label] = Cell(
            label=c.label,
            values=tuple(v for v in values if v is not None),
            runs=len(runs),
            finished=sum(r.status == "finished" for r in runs),
            diverged=sum(r.status == "diverged" for r in runs),
        )
    return out


def best(group: Sequence[Cell], metric: Metric) -> Cell | None:
    """The cell with the best mean (ties: the first); without any value, the first that diverged, else the first."""
    scored = [c for c in group if c.values]
    if scored:
        sign = -1.0 if metric.higher_is_better else 1.0
        return min(scored, key=lambda c: sign * c.mean)
    return next((c for c in group if c.diverged), group[0] if group else None)


def _select(
    configurations: Sequence[Configuration],
    by_label: Mapping[str, Cell],
    metric: Metric,
    arm: str,
    fixed: Mapping[str, Any],
) -> Cell | None:
    """The best cell among the configurations of ``arm`` whose points have the ``fixed`` axis values."""
    group = [
        by_label[c.label]
        for c in configurations
        if c.arm == arm and all(k in c.point and c.point[k] == v for k, v in fixed.items())
    ]
    return best(group, metric)


@dataclass(frozen=True)
class Grid:
    """One heatmap panel: a cell per (y value, x value); ``y_axis`` is ``"arm"`` when the sweep has one axis."""

    title: str
    x_axis: str
    x_values: tuple[Any, ...]
    y_axis: str
    y_values: tuple[Any, ...]
    cells: tuple[tuple[Cell | None, ...], ...]  # [row: y index][column: x index]

    def matrix(self) -> np.ndarray:
        """The mean of every cell in stored units (rows: y values, columns: x values), NaN where there is none."""
        return np.array([[c.mean if c is not None else math.nan for c in row] for row in self.cells], dtype=float)


def value_text(value: Any) -> str:
    """An axis value as the configuration labels write it (``0.01``, ``1e-05``, ``256``, ``adam``)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def grids(data: StudyData, view: SweepView) -> tuple[list[Grid], list[str]]:
    """The heatmap's panels and the axes each cell is the best over (``[]`` when every axis is drawn).

    One axis: one panel, a row per arm. Two or more: a panel per arm and per combination of the other axes' values,
    or, when that makes more than a dozen panels, a panel per arm whose cells are the best over the other axes.
    """
    metric = METRICS[view.metric]
    by_label = cells(data, view.metric)
    confs, sweep, arms = data.configurations, data.sweep, data.sweep_arms()
    xs = tuple(sweep[view.x])
    if view.y is None:
        rows = tuple(tuple(_select(confs, by_label, metric, arm, {view.x: x}) for x in xs) for arm in arms)
        return [Grid("", view.x, xs, "arm", tuple(arms), rows)], []
    ys = tuple(sweep[view.y])
    rest = [a for a in sweep if a not in (view.x, view.y)]
    combos = list(itertools.product(*(sweep[a] for a in rest)))
    split = len(combos) * len(arms) <= _MAX_HEATMAP_PANELS
    out = []
    for arm in arms:
        for combo in combos if split else [()]:
            fixed = dict(zip(rest, combo, strict=False))
            title = arm + "".join(f"\n{k}={value_text(v)}" for k, v in fixed.items())
            rows = tuple(
                tuple(_select(confs, by_label, metric, arm, {view.x: x, view.y: y, **fixed}) for x in xs) for y in ys
            )
            out.append(Grid(title, view.x, xs, view.y, ys, rows))
    return out, ([] if split else rest)


@dataclass(frozen=True)
class LinePanel:
    """One panel of the lines figure: per arm, a cell per value of the x axis."""

    title: str
    x_axis: str
    x_values: tuple[Any, ...]
    lines: dict[str, tuple[Cell | None, ...]]


def lines(data: StudyData, view: SweepView) -> tuple[list[LinePanel], list[str]]:
    """The lines figure's panels (one per value of ``view.y`` when it has at most six, else one) and the axes each
    point is the best over."""
    metric = METRICS[view.metric]
    by_label = cells(data, view.metric)
    confs, sweep = data.configurations, data.sweep
    xs = tuple(sweep[view.x])
    panel_axis = view.y if view.y is not None and len(sweep[view.y]) <= _MAX_LINE_PANELS else None
    panel_values = sweep[panel_axis] if panel_axis is not None else [None]
    out = []
    for value in panel_values:
        fixed = {panel_axis: value} if panel_axis is not None else {}
        per_arm = {
            arm: tuple(_select(confs, by_label, metric, arm, {view.x: x, **fixed}) for x in xs)
            for arm in data.sweep_arms()
        }
        title = f"{panel_axis}={value_text(value)}" if panel_axis is not None else ""
        out.append(LinePanel(title, view.x, xs, per_arm))
    return out, [a for a in sweep if a not in (view.x, panel_axis)]


def best_lr_by_width(data: StudyData, metric_name: str) -> dict[str, list[tuple[Any, Any | None]]] | None:
    """Per arm, ``(width, lr)`` for every width of the sweep: the learning rate of the configuration with the best mean
    metric at that width (best over every other axis too; ``None`` when no run at that width has a value). ``None``
    when the sweep does not vary both ``width`` and ``lr``.

    This is the transfer question of muP (Yang et al. 2022, "Tensor Programs V"): under a parametrization whose
    optimum transfers, the best rate stays put as the width grows.
    """
    if "width" not in data.sweep or "lr" not in data.sweep:
        return None
    metric = METRICS[metric_name]
    by_label = cells(data, metric_name)
    lr_of = {c.label: c.point["lr"] for c in data.configurations}
    out: dict[str, list[tuple[Any, Any | None]]] = {}
    for arm in data.sweep_arms():
        out[arm] = []
        for width in data.sweep["width"]:
            cell = _select(data.configurations, by_label, metric, arm, {"width": width})
            out[arm].append((width, lr_of[cell.label] if cell is not None and cell.values else None))
    return out


def best_rows(data: StudyData) -> list[dict[str, Any]]:
    """The "best configuration per arm" table: each arm's configuration with the highest mean test accuracy (the
    ranked table's first row of that arm), or dashes when none of its runs finished."""
    winners = best_per_arm(data.study.config, data.summary)
    point_of = {c.label: c.point for c in data.configurations}
    rows = []
    for arm in data.sweep_arms():
        row = winners.get(arm)
        if row is None:
            rows.append(dict(arm=arm, rank="-", point="no run finished", acc="-", loss="-", runs="-", diverged="-"))
            continue
        rows.append(
            dict(
                arm=arm,
                rank=row.rank,
                point=", ".join(f"{k}={value_text(v)}" for k, v in point_of.get(row.arm, {}).items()) or row.arm,
                acc=row.test_acc.text(100.0),
                loss=row.test_loss.text(digits=3),
                runs=f"{row.finished}/{row.runs}",
                diverged=f"{row.diverged}/{row.runs}" if row.diverged else "0",
            )
        )
    return rows


def positions(values: Sequence[Any]) -> tuple[np.ndarray, str]:
    """Where an axis' values sit and the x scale: numbers where they are (log when the positive ones span a decade,
    symmetric log when 0 is among them), anything else (optimizer names) evenly spaced."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return np.arange(len(values), dtype=float), "category"
    x = np.asarray(values, dtype=float)
    positive = x[x > 0]
    if positive.size >= 2 and positive.max() / positive.min() >= LOG_RATIO:
        return x, "symlog" if (x <= 0).any() else "log"
    return x, "linear"


@dataclass(frozen=True)
class FigureText:
    """What a sweep figure is called and says, the same in the static and the interactive report."""

    key: str  # "heatmap", "lines" or "best_lr"
    filename: str  # the PNG's name in the static report
    title: str
    caption: str
    alt: str


def seeds_text(data: StudyData) -> str:
    """``"2 seeds"``: the study's number of seeds, in words."""
    n = len(data.study.config.get("seeds", []))
    return f"{n} seed{'s' if n != 1 else ''}"


def _over(rest: Sequence[str], what: str) -> str:
    """The caption's note on the axes a figure does not draw."""
    return f" Each {what} is the best configuration over {', '.join(rest)} (not drawn)." if rest else ""


def figure_texts(data: StudyData, view: SweepView) -> list[FigureText]:
    """The sweep's figures for ``view`` (titles, captions, alt texts): the heatmap, the metric against the x axis,
    and the best learning rate against width when the sweep varies both."""
    metric = METRICS[view.metric]
    seeds = seeds_text(data)
    _, rest = grids(data, view)
    y_name = view.y or "arm"
    heat_title = f"{metric.title.capitalize()} over {view.x} and {y_name}"
    out = [
        FigureText(
            "heatmap",
            "sweep_heatmap.png",
            heat_title,
            f"Each cell is one configuration: its {metric.title}, the mean over its finished runs ({seeds} each)"
            + (", in percent" if metric.unit else "")
            + ". Brighter is better; one colour scale for every panel."
            + (" One panel per arm." if view.y else " One row per arm.")
            + " Marks: hatched, with × k/n, when k of the n runs diverged (the value is the mean of the others); red"
            " and crossed, “× diverged”, when every run diverged; white with a dotted edge when no run finished "
            "(pending or failed)." + _over(rest, "cell"),
            f"Heatmap of the {metric.title} over {view.x} (columns) and {y_name} (rows)"
            + (", one panel per arm" if view.y else "")
            + "; diverged configurations are marked",
        )
    ]
    line_panels, line_rest = lines(data, view)
    x_scale = positions(data.sweep[view.x])[1]
    out.append(
        FigureText(
            "lines",
            "sweep_lines.png",
            f"{metric.title.capitalize()} against {view.x}",
            f"One line per arm: the mean {metric.title} over seeds; the band spans the minimum to the maximum over "
            "seeds. × at the bottom: every run of that configuration diverged; a gap: no finished run."
            + (f" One panel per value of {view.y}." if len(line_panels) > 1 else "")
            + (" Log x axis: the values span a decade or more." if x_scale in ("log", "symlog") else "")
            + _over(line_rest, "point"),
            f"Line plot of the {metric.title} against {view.x}, one line per arm with a min-max band over seeds",
        )
    )
    if "width" in data.sweep and "lr" in data.sweep:
        out.append(
            FigureText(
                "best_lr",
                "best_lr_by_width.png",
                "Best learning rate against width",
                f"For each arm and width, the learning rate of the configuration with the best mean {metric.title}"
                " (best over every other axis too). A flat line means the best rate transfers across width, as "
                "muP is designed to do (Yang et al. 2022, Tensor Programs V); under the standard parametrization "
                "it usually moves with width. Arms are offset slightly sideways so that lines that coincide stay "
                "visible; a gap: no finished run at that width.",
                "Line plot of the best learning rate against width, one line per arm",
            )
        )
    return out
