"""The static report's figures (``initlab report --static``), drawn with matplotlib's Agg backend (no display
needed) and returned as PNG bytes.

Every arm keeps one look across figures (:mod:`initlab.report._styles`). Bands span the minimum to the maximum over
seeds; lines are the mean over seeds.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: never needs a display; set before pyplot is imported
import matplotlib.pyplot as plt
import numpy as np

from initlab.report._collect import StudyData
from initlab.report._styles import COLORS, LINESTYLES, MARKERS, ArmStyle
from initlab.report._styles import arm_styles as arm_styles

# The palette and looks live in _styles (no matplotlib there); kept under their old names for the drawing code.
_COLORS, _LINESTYLES, _MARKERS = COLORS, LINESTYLES, MARKERS
# PNG resolution: sharp on screen, and the default study's report stays well under 5 MB.
_DPI = 100
# The most layers drawn side by side; a deeper model shows this many, spread from first to last.
_MAX_LAYER_PANELS = 6
_BAND_ALPHA = 0.15


def _wrap(text: str, width: int = 28) -> str:
    return "\n".join(textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False)) or text


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    # bbox_inches="tight" grows the canvas to fit legends placed outside the axes and long labels.
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _legend(
    fig: Any,
    labels: Sequence[str],
    styles: Mapping[str, ArmStyle],
    extra: Sequence[Any] = (),
    title: str = "arm (init scheme)",
) -> None:
    """One legend for the whole figure, outside the axes on the right: a line per label in its style."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], label=_wrap(label), **styles[label].line()) for label in labels]
    fig.legend(
        handles=[*handles, *extra],
        loc="upper left",
        bbox_to_anchor=(1.0, 0.95),
        title=title,
        frameon=False,
        fontsize="small",
    )


def _mean_band(ax: Any, x: np.ndarray, values: np.ndarray, style: ArmStyle) -> None:
    if values.size == 0 or np.all(np.isnan(values)):
        return
    with np.errstate(all="ignore"), _quiet_nan():
        mean = np.nanmean(values, axis=0)
        lo, hi = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
    ax.plot(x, mean, **style.line())
    if values.shape[0] > 1:
        ax.fill_between(x, lo, hi, color=style.color, alpha=_BAND_ALPHA, linewidth=0)


class _quiet_nan:  # noqa: N801 - used as a context manager like np.errstate
    """Silence numpy's "mean of empty slice" warnings (an epoch no seed reached is simply not drawn)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


def learning_curves(data: StudyData, styles: dict[str, ArmStyle]) -> bytes:
    """Training and validation loss (log scale) and accuracy against epoch, one line per arm, min–max band."""
    panels = [
        ("train_loss", "training loss", "cross-entropy loss (nats, log scale)", True),
        ("val_loss", "validation loss", "cross-entropy loss (nats, log scale)", True),
        ("train_acc", "training accuracy", "accuracy (%)", False),
        ("val_acc", "validation accuracy", "accuracy (%)", False),
    ]
    loss_name = str(data.study.config.get("train", {}).get("loss", "cross_entropy"))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    for ax, (metric, title, ylabel, log) in zip(axes.flat, panels, strict=True):
        drawn = False
        for arm in data.arms:
            x, values = data.series(arm, metric)
            # A log axis cannot show 0; accuracies are drawn in percent.
            values = np.where(values > 0, values, np.nan) if log else values * 100.0
            _mean_band(ax, x, values, styles[arm])
            drawn = drawn or bool(np.isfinite(values).any())
        if log and drawn:
            ax.set_yscale("log")
        if metric == "val_acc" and np.isfinite(data.target_accuracy):
            ax.axhline(data.target_accuracy * 100.0, color="grey", linewidth=0.8, linestyle=(0, (1, 3)))
        if not drawn:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_title(title)
        ax.set_ylabel(ylabel if loss_name == "cross_entropy" or not log else f"{loss_name} loss (log scale)")
        ax.set_xlabel("epoch")
        ax.grid(True, which="major", alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    n_seeds = len(data.study.config.get("seeds", []))
    fig.suptitle(
        f"Learning curves: mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}, band = min–max over seeds",
        fontsize="large",
    )
    fig.tight_layout()
    _legend(fig, data.arms, styles)
    return _png(fig)


def _pick_layers(names: Sequence[str], limit: int) -> list[str]:
    if len(names) <= limit:
        return list(names)
    idx = np.unique(np.linspace(0, len(names) - 1, limit).round().astype(int))
    return [names[i] for i in idx]


def initial_histograms(data: StudyData, styles: dict[str, ArmStyle]) -> bytes | None:
    """Histograms of the first, a middle and the last weight tensor of each arm's initialized model."""
    arms = [a for a in data.init if a.layers]
    if not arms:
        return None
    names = [layer.name for layer in arms[0].layers]
    picked = [names[0], names[len(names) // 2], names[-1]] if len(names) > 3 else names
    rows, cols = len(arms), len(picked)
    height = 1.55 * rows + 1.0
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols + 1.0, height), squeeze=False)
    for r, arm in enumerate(arms):
        by_name = {layer.name: layer for layer in arm.layers}
        for c, name in enumerate(picked):
            ax = axes[r][c]
            layer = by_name.get(name)
            if layer is None:
                ax.set_axis_off()
                continue
            v = layer.values[np.isfinite(layer.values)]
            lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
            if hi - lo < 1e-12:  # a constant tensor (zeros, ones): one bar around its value
                lo, hi = lo - 0.5, hi + 0.5
            # One filled step artist instead of 50 bar patches: the twelve-arm grid draws several times faster.
            counts, edges = np.histogram(v, bins=50, range=(lo, hi))
            ax.stairs(counts, edges, fill=True, color=styles[arm.arm].color, alpha=0.85)
            ax.text(
                0.98,
                0.92,
                f"std {np.std(v):.3g}\nmean {np.mean(v):.2g}" if v.size else "empty",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize="x-small",
                bbox=dict(facecolor="white", alpha=0.8, edgecolor="none", pad=1.0),
            )
            ax.tick_params(labelsize="x-small")
            ax.locator_params(axis="x", nbins=5)
            ax.locator_params(axis="y", nbins=3)
            if r == 0:
                ax.set_title(f"{name} {tuple(layer.shape)}", fontsize="small")
            if c == 0:
                ax.set_ylabel(f"{_wrap(arm.arm, 22)}\n(count)", fontsize="small")
            if r == rows - 1:
                ax.set_xlabel("weight value", fontsize="small")
    fig.suptitle(
        f"Initial weights (before training) of the first, a middle and the last layer; first seed of each arm\n"
        f"x axes differ between panels; {data.study.config.get('model', '')}",
        fontsize="medium",
    )
    # Fixed margins (in inches, converted to figure fractions): tight_layout on a twelve-row grid costs seconds, and
    # savefig's bbox_inches="tight" still grows the canvas to fit long arm labels.
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.55 / height, top=1 - 1.1 / height, hspace=0.5, wspace=0.28)
    return _png(fig)


def layer_norms(data: StudyData, styles: dict[str, ArmStyle]) -> bytes | None:
    """Per-layer weight norm and gradient norm against epoch; epoch 0 is the rebuilt initialization (first seed)."""
    names = data.weight_layers()
    if not names:
        return None
    picked = _pick_layers(names, _MAX_LAYER_PANELS)
    init_norm = {(a.arm, layer.name): layer.norm for a in data.init for layer in a.layers}
    fig, axes = plt.subplots(2, len(picked), figsize=(3.4 * len(picked) + 1.0, 6.4), squeeze=False, sharex=True)
    for c, name in enumerate(picked):
        for r, which in enumerate(("weight_norm", "grad_norm")):
            ax = axes[r][c]
            for arm in data.arms:
                x, values = data.layer_series(arm, name, which)
                if which == "weight_norm" and (arm, name) in init_norm:
                    x = np.concatenate([[0], x])
                    values = np.concatenate([np.full((values.shape[0], 1), init_norm[(arm, name)]), values], axis=1)
                _mean_band(ax, x, values, styles[arm])
            # symlog: a zero norm (zero init, or a dead layer's gradient) is the point to see, and log cannot draw 0.
            ax.set_yscale("symlog", linthresh=1e-3)
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize="x-small")
            ax.xaxis.get_major_locator().set_params(integer=True)
            if r == 0:
                ax.set_title(name, fontsize="small")
            else:
                ax.set_xlabel("epoch")
            if c == 0:
                ax.set_ylabel(
                    "weight norm ‖W‖ (Frobenius)" if which == "weight_norm" else "gradient norm ‖∇W‖ (RMS over steps)"
                )
    fig.suptitle(
        "Per-layer weight and gradient norms (mean over seeds, band = min–max; symmetric log scale, 0 shown)\n"
        "epoch 0 = at initialization (rebuilt, first seed); gradient norm = RMS over the epoch's sampled steps",
        fontsize="medium",
    )
    fig.tight_layout()
    _legend(fig, data.arms, styles)
    return _png(fig)


# -- diagnoses: figures drawn from ``Diagnosis.to_dict()`` payloads ----------------------------------------------
# A diagnosis report and a study report draw the same stored form, so a payload read back from a Store and a
# Diagnosis built a moment ago give the same figures. A *series* is one labelled payload (a scheme, or an arm's run).
Payload = Mapping[str, Any]
Series = Sequence[tuple[str, Payload]]
# Bins of the Jacobian spectrum's histogram, log-spaced over all the series' positive singular values.
_SPECTRUM_BINS = 40
# Markers on a histogram's density curve: about this many per curve, so twelve curves stay apart in greyscale.
_CURVE_MARKERS = 6


def _layers(payload: Payload) -> list[Mapping[str, Any]]:
    layers = payload.get("layers")
    return [layer for layer in layers if isinstance(layer, Mapping)] if isinstance(layers, list) else []


def _value(layer: Mapping[str, Any], key: str) -> float:
    v = layer.get(key)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def has_gradients(series: Series) -> bool:
    """Whether any layer of any payload has a back-propagated gradient (the diagnosis had targets)."""
    return any(layer.get("grad_output_std") is not None for _, p in series for layer in _layers(p))


def _scale_y(ax: Any, values: Sequence[float]) -> None:
    """Log scale for positive values; symmetric log when a value is exactly 0 (zeros init), so 0 is still drawn."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    positive = finite[finite > 0]
    if positive.size == 0:
        return
    if (finite == 0).any():
        ax.set_yscale("symlog", linthresh=float(positive.min()) / 2)
    else:
        ax.set_yscale("log")


def depth_profile(series: Series, styles: Mapping[str, ArmStyle], *, title: str, legend_title: str) -> bytes:
    """Per-layer activation std and back-propagated gradient std against depth, one line per series."""
    panels = [("std", "activations: std of each layer's output", "std of the layer's output (log scale)")]
    if has_gradients(series):
        panels.append(
            (
                "grad_output_std",
                "back-propagated gradients: std of ∂loss/∂output",
                "std of ∂loss/∂output (log scale)",
            )
        )
    longest = max((_layers(p) for _, p in series), key=len, default=[])
    width = max(5.0, min(0.45 * len(longest) + 3.0, 9.0))
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 4.6), squeeze=False)
    for ax, (key, panel_title, ylabel) in zip(axes[0], panels, strict=True):
        seen: list[float] = []
        for label, payload in series:
            values = [_value(layer, key) for layer in _layers(payload)]
            seen += values
            ax.plot(np.arange(1, len(values) + 1), values, **styles[label].line())
        _scale_y(ax, seen)
        if not any(math.isfinite(v) for v in seen):
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xticks(np.arange(1, len(longest) + 1))
        ax.set_xticklabels([_wrap(str(layer.get("name", i)), 14) for i, layer in enumerate(longest)], fontsize="small")
        if len(longest) > 6:
            ax.tick_params(axis="x", labelrotation=45)
        ax.set_xlabel("layer (input → output)")
        ax.set_ylabel(ylabel)
        ax.set_title(panel_title, fontsize="medium")
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title, fontsize="large")
    fig.tight_layout()
    _legend(fig, [label for label, _ in series], styles, title=legend_title)
    return _png(fig)


def _density(hist: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(bin centres, density) of a stored histogram; ``None`` when it is absent or empty."""
    if not isinstance(hist, Mapping):
        return None
    edges = np.asarray(hist.get("edges", []), dtype=float)
    counts = np.asarray(hist.get("counts", []), dtype=float)
    if counts.size == 0 or edges.size != counts.size + 1 or counts.sum() <= 0:
        return None
    return (edges[:-1] + edges[1:]) / 2, counts / (counts.sum() * np.diff(edges))


Curve = tuple[str, Mapping[str, Any] | None]  # (label for the legend, stored histogram)


def histogram_panels(
    panels: Sequence[tuple[str, Sequence[Curve]]],
    styles: Mapping[str, ArmStyle],
    *,
    ncols: int,
    xlabel: str,
    title: str,
    legend_title: str,
    row_labels: Sequence[str] = (),
) -> bytes:
    """Small multiples of overlaid density curves (Glorot & Bengio 2010, Fig. 3, 6, 7): one panel per title.

    Each curve joins the bin centres of one stored histogram, its density (count / (total × bin width)) on a log
    axis, so a spike at 0 (ReLU) and the tails both show; an empty bin leaves a gap. ``row_labels`` name the rows.
    """
    nrows = max(1, math.ceil(len(panels) / ncols))
    height = 2.5 * nrows + 1.2
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.9 * ncols + 0.8, height), squeeze=False)
    labels: list[str] = []
    for i, (panel_title, curves) in enumerate(panels):
        ax = axes[i // ncols][i % ncols]
        drawn = False
        for label, hist in curves:
            density = _density(hist)
            if density is None:
                continue
            x, y = density
            y = np.where(y > 0, y, np.nan)
            # A constant (zeros init) fills one bin: a lone point has no line, so every point gets its marker.
            few = int(np.isfinite(y).sum()) <= _CURVE_MARKERS
            every = 1 if few else max(1, len(x) // _CURVE_MARKERS)
            ax.plot(x, y, **{**styles[label].line(), "markevery": every, "linewidth": 1.2})
            drawn = True
            if label not in labels:
                labels.append(label)
        if drawn:
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_title(_wrap(panel_title, 40), fontsize="small")
        ax.tick_params(labelsize="x-small")
        ax.grid(True, which="major", alpha=0.3)
        if i % ncols == 0:
            row = row_labels[i // ncols] if i // ncols < len(row_labels) else ""
            ax.set_ylabel((f"{_wrap(row, 22)}\n" if row else "") + "density (log scale)", fontsize="small")
        if i // ncols == nrows - 1 or i + ncols >= len(panels):
            ax.set_xlabel(xlabel, fontsize="small")
    for j in range(len(panels), nrows * ncols):
        axes[j // ncols][j % ncols].set_axis_off()
    fig.suptitle(title, fontsize="medium")
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.6 / height, top=1 - 1.0 / height, hspace=0.55, wspace=0.3)
    _legend(fig, [label for label in styles if label in labels], styles, title=legend_title)
    return _png(fig)


def jacobian_spectrum(series: Series, styles: Mapping[str, ArmStyle], *, title: str, legend_title: str) -> bytes | None:
    """Histogram of the input-output Jacobian's singular values on a log x axis, one curve per series.

    The isometry band (:data:`initlab.diagnostics.ISOMETRY_BAND`) is shaded; singular values of exactly 0 cannot sit
    on a log axis and are counted in the legend instead. ``None`` when no series kept its singular values.
    """
    from matplotlib.patches import Patch

    from initlab.diagnostics import ISOMETRY_BAND

    spectra: list[tuple[str, np.ndarray]] = []
    for label, payload in series:
        jac = payload.get("jacobian")
        sv = jac.get("singular_values") if isinstance(jac, Mapping) else None
        if sv:
            spectra.append((label, np.asarray(sv, dtype=float)))
    if not spectra:
        return None
    positive = np.concatenate([sv[sv > 0] for _, sv in spectra])
    fig, ax = plt.subplots(figsize=(8.0, 4.6))
    low, high = ISOMETRY_BAND
    ax.axvspan(low, high, color="grey", alpha=0.15, linewidth=0)
    legend_styles = dict(styles)
    order = []
    if positive.size:
        lo, hi = float(positive.min()), float(positive.max())
        if hi / lo < 1.01:  # one value: give the bins a width
            lo, hi = lo / 1.5, hi * 1.5
        edges = np.geomspace(lo, hi, _SPECTRUM_BINS + 1)
        centres = np.sqrt(edges[:-1] * edges[1:])
        for label, sv in spectra:
            counts, _ = np.histogram(sv[sv > 0], bins=edges)
            fraction = np.where(counts > 0, counts / sv.size * 100.0, np.nan)
            ax.plot(centres, fraction, **{**styles[label].line(), "markevery": max(1, _SPECTRUM_BINS // 8)})
        ax.set_xscale("log")
    else:
        ax.text(0.5, 0.5, "every singular value is 0", ha="center", va="center", transform=ax.transAxes)
    for label, sv in spectra:
        zeros = int((sv == 0).sum())
        shown = f"{label} ({zeros} of {sv.size} are 0)" if zeros else label
        legend_styles[shown] = styles[label]
        order.append(shown)
    ax.set_xlabel("singular value σ of ∂output/∂input (log scale)")
    ax.set_ylabel("share of singular values (% per bin)")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title, fontsize="medium")
    fig.tight_layout()
    _legend(
        fig,
        order,
        legend_styles,
        extra=[Patch(color="grey", alpha=0.15, label=f"isometry band [{low:g}, {high:g}]")],
        title=legend_title,
    )
    return _png(fig)


def diagnostics_over_training(
    series: Mapping[str, Sequence[tuple[int, Payload]]],
    styles: Mapping[str, ArmStyle],
    layers: Sequence[str],
    *,
    title: str,
) -> bytes:
    """Activation std (top) and gradient std (bottom) of a few layers against epoch, one line per series."""
    rows = [("std", "activation std")]
    if has_gradients([(arm, p) for arm, points in series.items() for _, p in points]):
        rows.append(("grad_output_std", "gradient std (∂loss/∂output)"))
    fig, axes = plt.subplots(
        len(rows), len(layers), figsize=(3.4 * len(layers) + 1.0, 3.1 * len(rows) + 0.8), squeeze=False, sharex=True
    )
    for c, name in enumerate(layers):
        for r, (key, ylabel) in enumerate(rows):
            ax = axes[r][c]
            seen: list[float] = []
            for arm, points in series.items():
                xs, ys = [], []
                for epoch, payload in points:
                    layer = next((x for x in _layers(payload) if x.get("name") == name), None)
                    if layer is not None:
                        xs.append(epoch)
                        ys.append(_value(layer, key))
                seen += ys
                ax.plot(xs, ys, **styles[arm].line())
            _scale_y(ax, seen)
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize="x-small")
            ax.xaxis.get_major_locator().set_params(integer=True)
            if r == 0:
                ax.set_title(name, fontsize="small")
            if r == len(rows) - 1:
                ax.set_xlabel("epoch (0 = at initialization)")
            if c == 0:
                ax.set_ylabel(f"{ylabel} (log scale)")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    _legend(fig, list(series), styles)
    return _png(fig)
