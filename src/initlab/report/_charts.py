"""The interactive report's charts as plain data: what ``report.js`` draws with uPlot, computed with numpy alone.

Each figure is a JSON-ready dict (:class:`ChartFigure` documents its fields), so the page embeds the numbers and the
browser draws them: no matplotlib, no image. A figure is a group of panels that share one legend (one entry per arm,
its colour and dash) and, when ``sync`` is set, one cursor and one x range (zoom one panel, the others follow); a
figure with ``frames`` has an epoch slider that swaps the panels for those of another stored diagnosis.

A panel of lines (``kind`` "lines") lists series, each ``{"key": arm, "x": [...], "y": [...]}`` with optional
``"lo"``/``"hi"`` (the band: min and max over seeds); series need not share their x values (histograms each have
their own bins). ``y.scale`` is the initial scale ("linear", "log" or "asinh", uPlot's symmetric log) and
``y.toggle`` whether the panel offers the other. A heatmap panel (``kind`` "heatmap") holds rows of cells.
Numbers are rounded to :data:`_DIGITS` significant digits: the page stays small and nothing shown is lost.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from initlab.report import _sweep
from initlab.report._collect import StudyData
from initlab.report._styles import ArmStyle, arm_styles, styles_for

# Significant digits of every number in the page: more than a reader can see on a chart or in a tooltip.
_DIGITS = 5
# Bins of an initial-weight histogram (the stored diagnoses use 50 too: initlab.diagnostics.HISTOGRAM_BINS).
_WEIGHT_BINS = 50
# The most layers drawn side by side in the layer-norm figure; a deeper model shows this many, first to last.
_MAX_LAYER_PANELS = 6
# Linear range of the symmetric log scale of norms: a zero norm (zero init, a dead layer's gradient) is drawn at 0.
_NORM_LINTHRESH = 1e-3


class ChartFigure(TypedDict, total=False):
    """One figure of the interactive page (keys as ``report.js`` reads them)."""

    id: str  # the container's id in the page
    kind: str  # "lines" or "heatmap"
    title: str
    legend: list[dict[str, Any]]  # [{"key", "color", "dash"}] in the study's order
    sync: bool  # one cursor and one x range for every panel
    columns: int  # panels per row
    panels: list[dict[str, Any]]
    frames: dict[str, Any]  # {"label": "epoch", "values": [...], "panels": [[...], ...]}: a slider
    scale: dict[str, Any]  # heatmaps: the colour scale shared by every panel


def num(value: Any) -> float | None:
    """A finite number rounded to :data:`_DIGITS` significant digits; ``None`` (JSON null) otherwise."""
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{_DIGITS}g}")


def nums(values: Iterable[Any]) -> list[float | None]:
    """:func:`num` of every value."""
    return [num(v) for v in values]


def _legend(labels: Sequence[str], styles: Mapping[str, ArmStyle]) -> list[dict[str, Any]]:
    return [dict(key=label, **styles[label].web()) for label in labels]


def _band(values: np.ndarray) -> dict[str, list[float | None]]:
    """Mean over the rows (runs) of ``values`` and, with more than one run, the min–max band; NaN-aware."""
    with warnings.catch_warnings():  # an epoch no seed reached: "mean of empty slice", drawn as a gap
        warnings.simplefilter("ignore", RuntimeWarning)
        out = {"y": nums(np.nanmean(values, axis=0))}
        if values.shape[0] > 1:
            out["lo"] = nums(np.nanmin(values, axis=0))
            out["hi"] = nums(np.nanmax(values, axis=0))
    return out


def _pick(names: Sequence[str], limit: int) -> list[str]:
    """At most ``limit`` of ``names``, evenly spread from the first to the last."""
    if len(names) <= limit:
        return list(names)
    idx = np.unique(np.linspace(0, len(names) - 1, limit).round().astype(int))
    return [names[i] for i in idx]


def _three(names: Sequence[str]) -> list[str]:
    """The first, a middle and the last of ``names`` (all of them when there are 3 or less)."""
    return [names[0], names[len(names) // 2], names[-1]] if len(names) > 3 else list(names)


def density(values: np.ndarray, bins: int = _WEIGHT_BINS) -> tuple[list[float | None], list[float | None]]:
    """(bin centres, density) of the finite ``values`` over their own range, ``bins`` bins (``np.histogram``); a
    constant tensor (zeros, ones) is one bin of width 1/``bins`` around its value."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return [], []
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    shown = counts > 0  # an empty bin is no point: the line joins the bins that hold weights
    dens = counts / (v.size * np.diff(edges))
    return nums(centres[shown]), nums(dens[shown])


def stored_density(hist: Any) -> tuple[list[float | None], list[float | None]]:
    """(bin centres, density) of a histogram stored by a diagnosis (``{"edges", "counts"}``); empty bins left out."""
    if not isinstance(hist, Mapping):
        return [], []
    edges = np.asarray(hist.get("edges", []), dtype=float)
    counts = np.asarray(hist.get("counts", []), dtype=float)
    if counts.size == 0 or edges.size != counts.size + 1 or counts.sum() <= 0:
        return [], []
    centres = (edges[:-1] + edges[1:]) / 2
    dens = counts / (counts.sum() * np.diff(edges))
    shown = counts > 0
    return nums(centres[shown]), nums(dens[shown])


# -- the study's figures ----------------------------------------------------------------------------------------
_CURVE_PANELS = (
    ("train_loss", "training loss", True),
    ("val_loss", "validation loss", True),
    ("train_acc", "training accuracy", False),
    ("val_acc", "validation accuracy", False),
)


def learning_curves(data: StudyData, styles: Mapping[str, ArmStyle]) -> ChartFigure:
    """Training and validation loss and accuracy against epoch: mean over seeds, min–max band, one line per arm."""
    loss_name = str(data.study.config.get("train", {}).get("loss", "cross_entropy"))
    loss_label = "cross-entropy loss (nats)" if loss_name == "cross_entropy" else f"{loss_name} loss"
    panels = []
    for metric, title, is_loss in _CURVE_PANELS:
        series = []
        for arm in data.arms:
            x, values = data.series(arm, metric)
            if not is_loss:
                values = values * 100.0
            series.append(dict(key=arm, x=[int(e) for e in x], **_band(values)))
        target = data.target_accuracy * 100.0 if metric == "val_acc" and math.isfinite(data.target_accuracy) else None
        panels.append(
            dict(
                kind="lines",
                title=title,
                xlabel="epoch",
                ylabel=loss_label if is_loss else "accuracy (%)",
                x=dict(scale="linear", integer=True),
                y=dict(scale="log" if is_loss else "linear", toggle=True),
                series=series,
                hline=num(target),
                filename=metric,
            )
        )
    return ChartFigure(
        id="learning-curves",
        kind="lines",
        title="Learning curves",
        legend=_legend(data.arms, styles),
        sync=True,
        columns=2,
        panels=panels,
    )


def initial_weights(data: StudyData, styles: Mapping[str, ArmStyle]) -> ChartFigure | None:
    """Density of the initial weights of the first, a middle and the last layer, one curve per arm (its own bins)."""
    arms = [a for a in data.init if a.layers]
    if not arms:
        return None
    names = [layer.name for layer in arms[0].layers]
    panels = []
    for name in _three(names):
        series = []
        shape: tuple[int, ...] = ()
        for arm in arms:
            layer = next((x for x in arm.layers if x.name == name), None)
            if layer is None:
                continue
            shape = layer.shape
            x, y = density(layer.values)
            finite = layer.values[np.isfinite(layer.values)]
            stats = dict(std=num(np.std(finite)), mean=num(np.mean(finite))) if finite.size else {}
            series.append(dict(key=arm.arm, x=x, y=y, **stats))
        panels.append(
            dict(
                kind="lines",
                title=f"{name} {tuple(shape)}",
                xlabel="weight value",
                ylabel="density",
                x=dict(scale="linear", fit=True),
                y=dict(scale="linear", toggle=True),
                series=series,
                filename=f"initial_{name}",
            )
        )
    return ChartFigure(
        id="initial-weights",
        kind="lines",
        title="Initial weight distributions",
        legend=_legend([a.arm for a in arms], styles),
        sync=False,
        columns=3,
        panels=panels,
    )


def layer_norms(data: StudyData, styles: Mapping[str, ArmStyle]) -> ChartFigure | None:
    """Per-layer weight norm (epoch 0: the rebuilt initialization) and gradient norm against epoch."""
    names = data.weight_layers()
    if not names:
        return None
    picked = _pick(names, _MAX_LAYER_PANELS)
    init_norm = {(a.arm, layer.name): layer.norm for a in data.init for layer in a.layers}
    panels = []
    for which, ylabel in (("weight_norm", "weight norm ‖W‖"), ("grad_norm", "gradient norm ‖∇W‖ (RMS)")):
        for name in picked:
            series = []
            for arm in data.arms:
                x, values = data.layer_series(arm, name, which)
                if which == "weight_norm" and (arm, name) in init_norm:
                    x = np.concatenate([[0], x])
                    values = np.concatenate([np.full((values.shape[0], 1), init_norm[(arm, name)]), values], axis=1)
                series.append(dict(key=arm, x=[int(e) for e in x], **_band(values)))
            panels.append(
                dict(
                    kind="lines",
                    title=f"{name}: {'weight' if which == 'weight_norm' else 'gradient'} norm",
                    xlabel="epoch",
                    ylabel=ylabel,
                    x=dict(scale="linear", integer=True),
                    y=dict(scale="asinh", linthresh=_NORM_LINTHRESH, toggle=True),
                    series=series,
                    filename=f"{which}_{name}",
                )
            )
    return ChartFigure(
        id="layer-norms",
        kind="lines",
        title="Per-layer weight and gradient norms",
        legend=_legend(data.arms, styles),
        sync=True,
        columns=min(3, len(picked)),
        panels=panels,
    )


# -- diagnoses stored during training ---------------------------------------------------------------------------
def _layers(payload: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    layers = payload.get("layers")
    return [layer for layer in layers if isinstance(layer, Mapping)] if isinstance(layers, list) else []


def _has_gradients(runs: Mapping[str, Sequence[tuple[int, Mapping[str, Any]]]]) -> bool:
    return any(
        layer.get("grad_output_std") is not None for points in runs.values() for _, p in points for layer in _layers(p)
    )


def diagnoses(
    runs: Mapping[str, Sequence[tuple[int, Mapping[str, Any]]]], styles: Mapping[str, ArmStyle]
) -> list[ChartFigure]:
    """The stored diagnoses of each arm's first seed (``runs``: per arm, ``(epoch, Diagnosis.to_dict())`` in epoch
    order) as interactive figures: per-layer std and histograms with an epoch slider, and, when more than one epoch
    is stored, the std of a few layers against epoch."""
    if not runs:
        return []
    epochs = sorted({epoch for points in runs.values() for epoch, _ in points})
    longest = max((_layers(p) for points in runs.values() for _, p in points), key=len)
    names = [str(layer.get("name")) for layer in longest]
    picked = _three(names)
    grads = _has_gradients(runs)
    stats = [("std", "activation std (layer output)")]
    if grads:
        stats.append(("grad_output_std", "gradient std (∂loss/∂output)"))
    hists = [("hist", "activations", "activation value")]
    if grads:
        hists.append(("grad_hist", "gradients ∂loss/∂output", "gradient value"))
    frames = []
    for epoch in epochs:
        at = {arm: dict(points).get(epoch) for arm, points in runs.items()}
        panels = []
        for key, ylabel in stats:
            series = []
            for arm, payload in at.items():
                if payload is None:
                    continue
                by_name = {str(layer.get("name")): layer for layer in _layers(payload)}
                ys = [by_name[n].get(key) if n in by_name else None for n in names]
                series.append(dict(key=arm, x=list(range(1, len(names) + 1)), y=nums(ys)))
            panels.append(
                dict(
                    kind="lines",
                    title=f"{ylabel} by layer",
                    xlabel="layer (input → output)",
                    ylabel=ylabel,
                    x=dict(scale="category", ticks=names),
                    y=dict(scale="log", toggle=True),
                    series=series,
                    filename=f"{key}_by_layer_epoch{epoch}",
                )
            )
        for key, what, xlabel in hists:
            for name in picked:
                series = []
                for arm, payload in at.items():
                    layer = next((x for x in _layers(payload or {}) if str(x.get("name")) == name), None)
                    if layer is None:
                        continue
                    x, y = stored_density(layer.get(key))
                    series.append(dict(key=arm, x=x, y=y))
                panels.append(
                    dict(
                        kind="lines",
                        title=f"{what}: layer {name}",
                        xlabel=xlabel,
                        ylabel="density",
                        x=dict(scale="linear", fit=True),
                        y=dict(scale="log", toggle=True),
                        series=series,
                        filename=f"{key}_{name}_epoch{epoch}",
                    )
                )
        frames.append(panels)
    out = [
        ChartFigure(
            id="diagnoses",
            kind="lines",
            title="Diagnoses per epoch",
            legend=_legend(list(runs), styles),
            sync=False,
            columns=2,
            frames=dict(label="epoch", values=epochs, panels=frames),
        )
    ]
    if len(epochs) > 1:
        out.append(_over_training(runs, styles, picked, stats))
    return out


def _over_training(
    runs: Mapping[str, Sequence[tuple[int, Mapping[str, Any]]]],
    styles: Mapping[str, ArmStyle],
    picked: Sequence[str],
    stats: Sequence[tuple[str, str]],
) -> ChartFigure:
    """Activation (and gradient) std of the ``picked`` layers against epoch, one line per arm."""
    panels = []
    for key, ylabel in stats:
        for name in picked:
            series = []
            for arm, points in runs.items():
                xs, ys = [], []
                for epoch, payload in points:
                    layer = next((x for x in _layers(payload) if str(x.get("name")) == name), None)
                    if layer is not None:
                        xs.append(epoch)
                        ys.append(layer.get(key))
                series.append(dict(key=arm, x=xs, y=nums(ys)))
            panels.append(
                dict(
                    kind="lines",
                    title=f"layer {name}: {ylabel}",
                    xlabel="epoch (0 = at initialization)",
                    ylabel=ylabel,
                    x=dict(scale="linear", integer=True),
                    y=dict(scale="log", toggle=True),
                    series=series,
                    filename=f"{key}_{name}_over_training",
                )
            )
    return ChartFigure(
        id="diagnoses-over-training",
        kind="lines",
        title="Activation and gradient std over training",
        legend=_legend(list(runs), styles),
        sync=True,
        columns=len(picked),
        panels=panels,
    )


# -- sweeps -----------------------------------------------------------------------------------------------------
def _axis(values: Sequence[Any], label: str) -> dict[str, Any]:
    """How a sweep axis is drawn: numbers where they are (log when they span a decade, asinh when 0 is among
    them), anything else (optimizer names) as categories."""
    x, scale = _sweep.positions(values)
    if scale == "category":
        return dict(scale="category", ticks=[_sweep.value_text(v) for v in values], values=list(range(1, len(x) + 1)))
    if scale == "symlog":
        positive = x[x > 0]
        return dict(scale="asinh", linthresh=float(positive.min()), values=nums(x), exact=True)
    return dict(scale=scale, values=nums(x), exact=True)


def sweep_figures(data: StudyData, view: _sweep.SweepView) -> dict[str, ChartFigure]:
    """The sweep's figures by :class:`~initlab.report._sweep.FigureText` key: the heatmap (drawn on a canvas by
    ``report.js``), the metric against the x axis and, when the sweep varies width and lr, the best rate by width."""
    legend = _legend(data.sweep_arms(), arm_styles(data.sweep_arms()))
    out = {"heatmap": _heatmap(data, view), "lines": _sweep_lines(data, view, legend)}
    best = _best_lr(data, view, legend)
    if best is not None:
        out["best_lr"] = best
    return out


def _heatmap(data: StudyData, view: _sweep.SweepView) -> ChartFigure:
    """The heatmap's panels (cells with value, text, state and runs) and its one colour scale."""
    metric = _sweep.METRICS[view.metric]
    grids, _ = _sweep.grids(data, view)
    values = np.concatenate([g.matrix().ravel() for g in grids]) * metric.factor
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    log = bool(not metric.unit and lo > 0 and hi / lo >= _sweep.LOG_RATIO)
    heat_panels = []
    for grid in grids:
        rows = []
        for row in grid.cells:
            cells = []
            for cell in row:
                state = cell.state if cell is not None else "unfinished"
                mean = cell.mean * metric.factor if cell is not None else math.nan
                cells.append(
                    dict(
                        v=num(mean),
                        t=metric.text(mean) if math.isfinite(mean) else "",
                        s=state,
                        l=cell.label if cell is not None else "",
                        n=cell.runs if cell is not None else 0,
                        d=cell.diverged if cell is not None else 0,
                    )
                )
            rows.append(cells)
        heat_panels.append(
            dict(
                kind="heatmap",
                title=grid.title,
                xlabel=grid.x_axis,
                ylabel=grid.y_axis,
                xs=[_sweep.value_text(v) for v in grid.x_values],
                ys=[_sweep.value_text(v) for v in grid.y_values],
                cells=rows,
                # Arms read top to bottom in the study's order; axis values grow upwards.
                flip=grid.y_axis != "arm",
                filename=f"heatmap_{grid.title or 'all'}".replace("\n", "_"),
            )
        )
    return ChartFigure(
        id="sweep-heatmap",
        kind="heatmap",
        title="heatmap",
        legend=[],
        sync=False,
        columns=min(3, len(heat_panels)),
        panels=heat_panels,
        scale=dict(lo=num(lo), hi=num(hi), log=log, higher_is_better=metric.higher_is_better, label=metric.label()),
    )


def _sweep_lines(data: StudyData, view: _sweep.SweepView, legend: list[dict[str, Any]]) -> ChartFigure:
    """The metric against the x axis: mean and min–max band per arm, × where every run diverged."""
    metric = _sweep.METRICS[view.metric]
    line_panels, _ = _sweep.lines(data, view)
    x_axis = _axis(data.sweep[view.x], view.x)
    panels = []
    for panel in line_panels:
        series = []
        for arm, row in panel.lines.items():
            mean = [c.mean * metric.factor if c is not None else math.nan for c in row]
            low = [c.low * metric.factor if c is not None else math.nan for c in row]
            high = [c.high * metric.factor if c is not None else math.nan for c in row]
            gone = [x_axis["values"][i] for i, c in enumerate(row) if c is not None and c.state == "diverged"]
            series.append(dict(key=arm, x=x_axis["values"], y=nums(mean), lo=nums(low), hi=nums(high), marks=gone))
        shown = [c.mean * metric.factor for row in panel.lines.values() for c in row if c and c.values]
        y_log = bool(not metric.unit and shown and min(shown) > 0 and max(shown) / min(shown) >= _sweep.LOG_RATIO)
        panels.append(
            dict(
                kind="lines",
                title=panel.title,
                xlabel=view.x,
                ylabel=metric.label(),
                x=x_axis,
                y=dict(scale="log" if y_log else "linear", toggle=True),
                series=series,
                filename=f"sweep_lines_{panel.title or 'all'}",
            )
        )
    return ChartFigure(
        id="sweep-lines",
        kind="lines",
        title="lines",
        legend=legend,
        sync=True,
        columns=min(3, len(panels)),
        panels=panels,
    )


def _best_lr(data: StudyData, view: _sweep.SweepView, legend: list[dict[str, Any]]) -> ChartFigure | None:
    """The best learning rate against width, one line per arm; None unless the sweep varies width and lr."""
    best = _sweep.best_lr_by_width(data, view.metric)
    if best is None:
        return None
    widths = list(data.sweep["width"])
    w_axis = _axis(widths, "width")
    if w_axis["scale"] == "linear" and min(widths) > 0 and max(widths) / min(widths) >= 4:
        w_axis = dict(w_axis, scale="log", base=2)
    lr_axis = _axis(list(data.sweep["lr"]), "lr")
    series = [
        dict(key=arm, x=w_axis["values"], y=nums(float(lr) if lr is not None else None for _, lr in points))
        for arm, points in best.items()
    ]
    return ChartFigure(
        id="best-lr",
        kind="lines",
        title="best lr",
        legend=legend,
        sync=False,
        columns=1,
        panels=[
            dict(
                kind="lines",
                title="",
                xlabel="width (hidden units per layer)",
                ylabel="best learning rate",
                x=w_axis,
                y=dict(scale="log" if lr_axis["scale"] == "log" else "linear", toggle=True),
                series=series,
                filename="best_lr_by_width",
            )
        ],
    )


def study_figures(data: StudyData) -> list[ChartFigure]:
    """The interactive study figures for ``data``: learning curves, initial weights and per-layer norms (those with
    something to show)."""
    styles = styles_for(data)
    planned = [learning_curves(data, styles), initial_weights(data, styles), layer_norms(data, styles)]
    return [f for f in planned if f is not None]
