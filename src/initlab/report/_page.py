"""The interactive study page: the charts' numbers (:mod:`initlab.report._charts`) embedded as JSON, uPlot and
``report.js`` inlined, and a Content-Security-Policy that lets only those two scripts run and nothing be fetched."""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.resources
import json
from collections.abc import Sequence
from typing import Any

from initlab.report import _charts, _sweep
from initlab.report._build import _render
from initlab.report._collect import StudyData
from initlab.report._stored import _first_seed_diagnoses
from initlab.report._styles import styles_for
from initlab.report._template import CHART_STYLE, PAGE_STYLE, STATIC_CSP

# -- the interactive page ---------------------------------------------------------------------------------------
# The vendored uPlot (the playground's copy: initlab/playground/static/vendor/uplot, VERSION beside it).
_UPLOT = ("initlab.playground", "static/vendor/uplot")


@functools.lru_cache(maxsize=1)
def _assets() -> tuple[str, str, str]:
    """(uPlot's classic script, its style sheet, report.js), read once from the installed package."""
    uplot = importlib.resources.files(_UPLOT[0]).joinpath(_UPLOT[1])
    script = uplot.joinpath("uPlot.iife.min.js").read_text(encoding="utf-8")
    css = uplot.joinpath("uPlot.min.css").read_text(encoding="utf-8")
    ours = importlib.resources.files("initlab.report").joinpath("report.js").read_text(encoding="utf-8")
    for name, text in (("uPlot.iife.min.js", script), ("report.js", ours)):
        if "</script" in text.lower():  # would end the inline <script> early
            raise ValueError(f"{name} contains '</script' and cannot be inlined into the report.")
    return script, css, ours


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&`` are
    written as ``\\u003c``-style escapes (so no ``</script>`` or ``<!--`` can end or alter the element), as are the
    line separators U+2028 and U+2029; NaN and infinities are refused (:func:`initlab.report._charts.num` turns them
    into null first)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    for char, escape in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escape)
    return text


def _csp(scripts: Sequence[str]) -> str:
    """The policy of the interactive page: nothing fetched, and only these inline scripts run (by SHA-256)."""
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in scripts)
    return f"{STATIC_CSP}; script-src {hashes}"


# Titles, captions and alt texts of the interactive study figures, by the id of their container.
_CHART_TEXTS: dict[str, tuple[str, str, str]] = {
    "learning-curves": (
        "Learning curves",
        "Training and validation loss and accuracy against epoch. Each line is the mean over the {seeds} of one "
        "arm; the shaded band spans the minimum to the maximum over seeds. Diverged runs stop before the epoch in "
        "which they diverged. The dotted line marks the target validation accuracy. The four panels share their "
        "cursor and their x range: zoom one (drag), and the others follow.",
        "Learning curves: training and validation loss and accuracy per epoch for each arm",
    ),
    "initial-weights": (
        "Initial weight distributions",
        "Density of the weights of the first, a middle and the last layer right after initialization, before any "
        "training step: the model was rebuilt from the study config and initialized with each arm's scheme and "
        "first seed. Each arm has its own 50 bins over its own range; hide arms (or double-click one) and the x "
        "axis fits the arms shown. A constant tensor (zeros, ones) is one bin of width 1/50.",
        "Density of the initial weights of the first, a middle and the last layer for each arm",
    ),
    "layer-norms": (
        "Per-layer weight and gradient norms",
        "Top row: the Frobenius norm of each weight matrix at the end of each epoch (epoch 0: at initialization, "
        "rebuilt with the first seed). Bottom row: the root mean square of the gradient norm over the steps sampled "
        "in each epoch. Mean over seeds, band = min–max over seeds, symmetric log scale (linear below 0.001, so a "
        "zero norm is drawn at 0).",
        "Per-layer weight norm and gradient norm against epoch for each arm",
    ),
    "diagnoses": (
        "Diagnoses per epoch: signal and gradients by layer",
        "From the diagnoses the runner stored (initlab.diagnose on a batch of training data; epoch 0 is at "
        "initialization), each arm's first seed; the slider picks the epoch. The std of each layer's output and of "
        "the back-propagated gradient ∂loss/∂output by layer (a flat profile keeps the signal and the gradient at "
        "one scale through depth: Glorot & Bengio 2010; He et al. 2015), then the distribution of the outputs and "
        "gradients of the first, a middle and the last layer (density, log scale).",
        "Per-layer activation and gradient statistics of the stored diagnoses, with an epoch slider",
    ),
    "diagnoses-over-training": (
        "Activation and gradient std over training",
        "The std of the outputs (top) and of the back-propagated gradients (bottom) of the first, a middle and the "
        "last layer at each epoch with a stored diagnosis (epoch 0: at initialization), one line per arm (first "
        "seed). Log scale.",
        "Per-layer activation std and gradient std against epoch for each arm",
    ),
}


def _chart_entry(spec: _charts.ChartFigure, title: str, caption: str, alt: str) -> dict[str, Any]:
    return dict(kind="chart", id=spec["id"], title=title, caption=caption, alt=alt)


def render_interactive_html(data: StudyData, view: _sweep.SweepView | None = None) -> str:
    """The interactive HTML page of the study report: every figure drawn in the browser by uPlot from the numbers
    embedded in the page, which holds everything it needs (no request, works offline)."""
    seeds = _sweep.seeds_text(data)
    specs: list[_charts.ChartFigure] = []

    def entries(figures: Sequence[_charts.ChartFigure]) -> list[dict[str, Any]]:
        out = []
        for spec in figures:
            title, caption, alt = _CHART_TEXTS[spec["id"]]
            specs.append(spec)
            out.append(_chart_entry(spec, title, caption.format(seeds=seeds), alt))
        return out

    study = entries(_charts.study_figures(data))
    diagnosed = entries(_charts.diagnoses(_first_seed_diagnoses(data), styles_for(data)))
    swept = []
    if data.configurations:
        view = view or _sweep.choose_view(data.sweep)
    if view is not None and data.configurations:
        charts = _charts.sweep_figures(data, view)
        for text in _sweep.figure_texts(data, view):
            if text.key in charts:
                specs.append(charts[text.key])
                swept.append(_chart_entry(charts[text.key], text.title, text.caption, text.alt))
    uplot, uplot_css, ours = _assets()
    scripts = [uplot, ours]
    return _render(
        data,
        view,
        style=PAGE_STYLE + uplot_css + "\n" + CHART_STYLE,
        csp=_csp(scripts),
        figures=study,
        diag_figures=diagnosed,
        sweep_figures=swept,
        scripts=scripts,
        data_json=script_json({"figures": specs}),
    )
