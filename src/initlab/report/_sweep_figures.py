"""The figures of a study with a sweep: a heatmap of one metric over two axes, the metric against one axis, and, when
the sweep varies width and learning rate, the best learning rate against width. Drawn with matplotlib's Agg backend
from what :mod:`initlab.report._sweep` computed; :func:`figures` adds each figure's title, caption and alt text.

Every arm keeps its colour (:func:`initlab.report._figures.arm_styles`); in the learning curves of a sweep a
configuration takes its arm's colour and its grid point's line style and marker (:func:`configuration_styles`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless, as in _figures: set before pyplot is imported
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import NullLocator

from initlab.report import _figures, _sweep
from initlab.report._collect import StudyData
from initlab.report._styles import configuration_styles as configuration_styles
from initlab.report._sweep import (
    METRICS,
    Cell,
    Grid,
    LinePanel,
    Metric,
    SweepView,
    best_lr_by_width,
    grids,
    lines,
    value_text,
)

# How the cells of a heatmap are marked: a diverged run is the thing to see, so red and crossed; no run finished yet
# (pending or failed) is merely missing, so white with a dotted edge.
_DIVERGED = "#b00020"
_DIVERGED_FILL = "#f6d5da"
_UNFINISHED_EDGE = "#888888"
# A numeric axis whose positive values span at least this ratio is drawn on a log scale (a decade: lr, scale).
_LOG_RATIO = 10.0
# Sideways offset between arms in the best-learning-rate figure, in octaves of width, so coinciding lines stay apart.
_ARM_OFFSET = 0.06

# (file name, title, caption, alt text, PNG): what _build makes a Figure of.
Planned = tuple[str, str, str, str, bytes]


# -- the heatmap ------------------------------------------------------------------------------------------------
def _norm(values: np.ndarray, metric: Metric) -> Any:
    """The colour scale shared by every panel: linear over the values, log for a loss that spans a decade."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return Normalize(0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    if not metric.unit and lo > 0 and hi / lo >= _LOG_RATIO:
        return LogNorm(lo, hi)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    return Normalize(lo, hi)


def _cell_mark(ax: Any, i: int, j: int, cell: Cell | None, metric: Metric, rgba: Any, fontsize: str) -> str:
    """Annotate the cell in row ``i``, column ``j`` (value, or a mark); return its state."""
    state = cell.state if cell is not None else "unfinished"
    corner = (j - 0.5, i - 0.5)
    if cell is not None and state in ("ok", "some_diverged"):
        dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
        text = metric.text(cell.mean * metric.factor)
        if state == "some_diverged":
            ax.add_patch(Rectangle(corner, 1, 1, fill=False, hatch="///", edgecolor=_DIVERGED, linewidth=0))
            text += f"\n× {cell.diverged}/{cell.runs}"
        colour = "white" if dark else "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=colour, fontweight="bold")
    elif state == "diverged":
        ax.add_patch(Rectangle(corner, 1, 1, facecolor=_DIVERGED_FILL, hatch="xx", edgecolor=_DIVERGED, linewidth=0))
        ax.text(j, i, "× diverged", ha="center", va="center", fontsize=fontsize, color=_DIVERGED, fontweight="bold",
                bbox=dict(facecolor="white", edgecolor="none", pad=1.0, alpha=0.85))  # fmt: skip
    else:
        ax.add_patch(Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, facecolor="white", edgecolor=_UNFINISHED_EDGE,
                               linestyle=":", linewidth=1.2))  # fmt: skip
        words = "no value" if state == "no_value" else "no run\nfinished"
        ax.text(j, i, words, ha="center", va="center", fontsize=fontsize, color=_UNFINISHED_EDGE)
    return state


def _heat_panel(ax: Any, grid: Grid, metric: Metric, cmap: Any, norm: Any) -> set[str]:
    """Draw one panel; return the states of its cells (for the legend of marks)."""
    shown = grid.matrix() * metric.factor
    ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, norm=norm, origin="lower", aspect="auto")
    fontsize = "small" if len(grid.x_values) <= 6 else "x-small"
    states = set()
    for i, row in enumerate(grid.cells):
        for j, cell in enumerate(row):
            rgba = cmap(norm(shown[i, j])) if math.isfinite(shown[i, j]) else (1.0, 1.0, 1.0, 1.0)
            states.add(_cell_mark(ax, i, j, cell, metric, rgba, fontsize))
    ax.set_xticks(range(len(grid.x_values)), [value_text(v) for v in grid.x_values])
    ax.set_yticks(range(len(grid.y_values)), [_figures._wrap(value_text(v), 18) for v in grid.y_values])
    ax.set_xticks(np.arange(-0.5, len(grid.x_values)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(grid.y_values)), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set_xlabel(grid.x_axis)
    ax.set_ylabel(grid.y_axis)
    if grid.y_axis == "arm":  # arms read top to bottom in the study's order; axis values grow upwards
        ax.invert_yaxis()
    if grid.title:
        ax.set_title(grid.title, fontsize="medium")
    return states


def heatmap_figure(panels: Sequence[Grid], metric: Metric, *, title: str) -> Any:
    """The heatmap as a matplotlib figure (one panel per grid, one colour scale, a key to the marks)."""
    values = np.concatenate([g.matrix().ravel() for g in panels]) * metric.factor
    norm = _norm(values, metric)
    # Brighter is better: viridis for accuracies, reversed for losses.
    cmap = plt.get_cmap("viridis" if metric.higher_is_better else "viridis_r").copy()
    nx, ny = len(panels[0].x_values), len(panels[0].y_values)
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    size = (ncols * (0.9 * nx + 1.6) + 1.4, nrows * (0.6 * ny + 1.5) + 1.2)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, layout="constrained")
    states: set[str] = set()
    for ax, grid in zip(axes.flat, panels, strict=False):
        states |= _heat_panel(ax, grid, metric, cmap, norm)
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, shrink=0.9, label=metric.label())
    key = [
        ("some_diverged", Patch(fill=False, hatch="///", edgecolor=_DIVERGED, label="× k/n: k of n runs diverged")),
        ("diverged", Patch(facecolor=_DIVERGED_FILL, hatch="xx", edgecolor=_DIVERGED, label="every run diverged")),
        ("unfinished", Patch(facecolor="white", edgecolor=_UNFINISHED_EDGE, linestyle=":", label="no run finished")),
        ("no_value", Patch(facecolor="white", edgecolor=_UNFINISHED_EDGE, linestyle=":", label="no value recorded")),
    ]
    handles = [patch for state, patch in key if state in states]
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, fontsize="small")
    fig.suptitle(title, fontsize="large")
    return fig


# -- lines ------------------------------------------------------------------------------------------------------
def _set_x(ax: Any, values: Sequence[Any], x: np.ndarray, scale: str, label: str) -> None:
    """Ticks at the axis' values, written as in the labels, the scale and a margin on both sides."""
    if scale == "log":
        ax.set_xscale("log")
    elif scale == "symlog":
        ax.set_xscale("symlog", linthresh=float(x[x > 0].min()))
    ax.set_xticks(x, [value_text(v) for v in values])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(label + (" (log scale)" if scale in ("log", "symlog") else ""))
    # A margin on both sides, so that a point or a diverged mark at the first or last value is not cut in half.
    lo, hi = float(x.min()), float(x.max())
    if scale == "log":
        pad = (hi / lo) ** 0.05
        ax.set_xlim(lo / pad, hi * pad)
    elif scale != "symlog":
        pad = 0.05 * ((hi - lo) or 1.0)
        ax.set_xlim(lo - pad, hi + pad)


def _draw_lines(ax: Any, panel: LinePanel, metric: Metric, styles: Mapping[str, _figures.ArmStyle]) -> bool:
    """One panel: mean line and min–max band per arm, × at the bottom where every run diverged; whether any did."""
    x, scale = _sweep.positions(panel.x_values)
    any_diverged = False
    for k, (arm, row) in enumerate(panel.lines.items()):
        style = styles[arm]
        mean = np.array([c.mean if c is not None else math.nan for c in row]) * metric.factor
        low = np.array([c.low if c is not None else math.nan for c in row]) * metric.factor
        high = np.array([c.high if c is not None else math.nan for c in row]) * metric.factor
        ax.plot(x, mean, **style.line())
        ax.fill_between(x, low, high, color=style.color, alpha=_figures._BAND_ALPHA, linewidth=0)
        gone = [i for i, c in enumerate(row) if c is not None and c.state == "diverged"]
        if gone:
            any_diverged = True
            # One height per arm near the bottom, so that the marks of several arms do not hide each other.
            ax.scatter(x[gone], [0.04 + 0.05 * k] * len(gone), marker="x", s=70, linewidths=2, color=style.color,
                       transform=ax.get_xaxis_transform(), clip_on=False, zorder=5)  # fmt: skip
    _set_x(ax, panel.x_values, x, scale, panel.x_axis)
    ax.grid(True, which="major", alpha=0.3)
    if panel.title:
        ax.set_title(panel.title, fontsize="medium")
    return any_diverged


def lines_figure(
    panels: Sequence[LinePanel], metric: Metric, styles: Mapping[str, _figures.ArmStyle], *, title: str
) -> Any:
    """The metric against one axis, a panel per value of another (see :func:`initlab.report._sweep.lines`)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels) + 1.0, 4.4), squeeze=False, sharey=True)
    diverged = False
    for ax, panel in zip(axes[0], panels, strict=True):
        diverged = _draw_lines(ax, panel, metric, styles) or diverged
    values = [c.mean * metric.factor for p in panels for row in p.lines.values() for c in row if c and c.values]
    if not metric.unit and values and min(values) > 0 and max(values) / min(values) >= _LOG_RATIO:
        axes[0][0].set_yscale("log")
    axes[0][0].set_ylabel(metric.label())
    fig.suptitle(title, fontsize="large")
    fig.tight_layout()
    extra = [Line2D([], [], marker="x", linestyle="none", color="grey", markersize=8, label="every run diverged")]
    _figures._legend(fig, list(panels[0].lines), styles, extra=extra if diverged else ())
    return fig


def best_lr_figure(
    best: Mapping[str, list[tuple[Any, Any | None]]],
    lrs: Sequence[Any],
    styles: Mapping[str, _figures.ArmStyle],
    *,
    title: str,
) -> Any:
    """The learning rate with the best mean metric against width, one line per arm."""
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    arms = list(best)
    widths = [w for w, _ in next(iter(best.values()))]
    x, scale = _sweep.positions(widths)
    log_x = scale in ("log", "symlog") or (x.min() > 0 and x.max() / x.min() >= 4)
    for i, arm in enumerate(arms):
        shift = (i - (len(arms) - 1) / 2) * _ARM_OFFSET
        xs = x * 2.0**shift if log_x else x + shift * (np.ptp(x) or 1.0) / 4
        ys = np.array([float(lr) if lr is not None else math.nan for _, lr in best[arm]])
        ax.plot(xs, ys, **styles[arm].line())
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_xticks(x, [value_text(w) for w in widths])
    ax.xaxis.set_minor_locator(NullLocator())
    y, y_scale = _sweep.positions(lrs)
    if y_scale == "log":
        ax.set_yscale("log")
    ax.set_yticks(y, [value_text(v) for v in lrs])
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("width (hidden units per layer" + (", log scale)" if log_x else ")"))
    ax.set_ylabel("best learning rate" + (" (log scale)" if y_scale == "log" else ""))
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    _figures._legend(fig, arms, styles)
    return fig


# -- the planned figures ----------------------------------------------------------------------------------------
def _png(fig: Any) -> bytes:
    return _figures._png(fig)


def figures(data: StudyData, view: SweepView) -> list[Planned]:
    """The sweep's figures for ``view``: the heatmap, the metric against the x axis, and the best learning rate
    against width when the sweep varies both (texts from :func:`initlab.report._sweep.figure_texts`)."""
    metric = METRICS[view.metric]
    seeds = _sweep.seeds_text(data)
    styles = _figures.arm_styles(data.sweep_arms())
    out = []
    for text in _sweep.figure_texts(data, view):
        if text.key == "heatmap":
            panels, _ = grids(data, view)
            fig = heatmap_figure(panels, metric, title=f"{text.title} (mean over {seeds})")
        elif text.key == "lines":
            line_panels, _ = lines(data, view)
            fig = lines_figure(line_panels, metric, styles, title=text.title)
        else:
            best = best_lr_by_width(data, view.metric)
            if best is None:  # figure_texts plans it only when the sweep has width and lr
                continue
            fig = best_lr_figure(best, data.sweep["lr"], styles, title=text.title)
        out.append((text.filename, text.title, text.caption, text.alt, _png(fig)))
    return out
