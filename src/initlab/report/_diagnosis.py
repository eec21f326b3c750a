"""The report of a diagnosis (or of several schemes compared): figures, one self-contained HTML page, a Markdown file.

Everything is drawn from ``Diagnosis.to_dict()``, the form a study stores, so the figures here and in a study's
report are the same functions (:mod:`initlab.report._figures`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2

from initlab.diagnostics import ISOMETRY_BAND, Comparison, Diagnosis
from initlab.diagnostics.format import fmt as _fmt
from initlab.diagnostics.format import pct as _pct
from initlab.fileio import write_atomic
from initlab.report._build import Figure, _md_cell, _resolve_out
from initlab.report._template import DIAGNOSIS_TEMPLATE, PAGE_STYLE

logger = logging.getLogger(__name__)

DIAGNOSIS_HTML_NAME = "diagnosis.html"
DIAGNOSIS_MARKDOWN_NAME = "diagnosis.md"
# Histograms overlay at most this many layers per panel (first to last, evenly spread): twelve styles stay distinct.
_MAX_HISTOGRAM_LAYERS = 12
# Panels per row in the histogram figures of a comparison.
_HISTOGRAM_COLUMNS = 3


def _series(result: Diagnosis | Comparison) -> list[tuple[str, dict[str, Any]]]:
    """(unique label, ``to_dict()`` payload) per diagnosis, in order."""
    if isinstance(result, Diagnosis):
        items = [(result.label or "diagnosis", result)]
    elif isinstance(result, Comparison):
        items = list(zip(result.labels, result.diagnoses, strict=True))
    else:
        raise TypeError(
            f"build_diagnosis_report takes a Diagnosis or a Comparison (from initlab.diagnose or "
            f"initlab.compare_diagnoses), got {type(result).__name__}."
        )
    out: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for label, d in items:
        seen[label] = seen.get(label, 0) + 1
        out.append((label if seen[label] == 1 else f"{label} ({seen[label]})", d.to_dict()))
    return out


def _layer_names(series: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    longest = max((p.get("layers", []) for _, p in series), key=len, default=[])
    return [str(layer.get("name")) for layer in longest]


def _histogram_figure(
    series: Sequence[tuple[str, Mapping[str, Any]]], key: str, *, what: str, xlabel: str
) -> bytes | None:
    """One panel per scheme, one density curve per layer (Glorot & Bengio 2010 style)."""
    from initlab.report import _figures  # matplotlib, imported when a diagnosis report is drawn

    names = _figures._pick_layers(_layer_names(series), _MAX_HISTOGRAM_LAYERS)
    longest = {str(layer.get("name")): layer for layer in max((p.get("layers", []) for _, p in series), key=len)}
    # The legend names each layer with its type and activation ("1 (Linear, tanh)"): the curves' shapes depend on it.
    legend = {n: f"{n} ({longest[n].get('module_type')}, {longest[n].get('activation')})" for n in names}
    styles = _figures.arm_styles(list(legend.values()))
    panels = []
    for label, payload in series:
        by_name = {str(layer.get("name")): layer for layer in payload.get("layers", [])}
        curves = [(legend[name], by_name[name].get(key)) for name in names if name in by_name]
        panels.append((label, curves))
    if not any(hist for _, curves in panels for _, hist in curves):
        return None
    shown = "" if len(names) == len(_layer_names(series)) else f" ({len(names)} layers, first to last)"
    return _figures.histogram_panels(
        panels,
        styles,
        ncols=min(_HISTOGRAM_COLUMNS, len(panels)),
        xlabel=xlabel,
        title=f"{what} per layer{shown}, one panel per scheme",
        legend_title="layer (input → output)",
    )


def diagnosis_figures(series: Sequence[tuple[str, Mapping[str, Any]]], *, title: str) -> list[Figure]:
    """The figures of a diagnosis report: std against depth, histograms of activations and gradients, the spectrum."""
    from initlab.report import _figures  # matplotlib, imported when a diagnosis report is drawn

    styles = _figures.arm_styles([label for label, _ in series])
    batch = next((p.get("batch") for _, p in series), "?")
    figures = [
        Figure(
            "depth_profile.png",
            "Activation and gradient std against depth",
            f"Left: the standard deviation of each layer's output over the batch of {batch} samples, layers in call "
            "order. Right (with targets): the std of the back-propagated gradient ∂loss/∂output at each layer. A "
            "well-scaled initialization keeps both roughly flat with depth (Glorot & Bengio 2010; He et al. 2015); a "
            "steady slope is the per-layer factor that compounds into vanishing or exploding signals. Log scale "
            "(symmetric log, linear near 0, when a std is exactly 0).",
            f"Per-layer activation std and gradient std against depth for {title}",
            _figures.depth_profile(
                series, styles, title=f"Signal and gradient by layer: {title}", legend_title="scheme"
            ),
        )
    ]
    acts = _histogram_figure(series, "hist", what="Activation values", xlabel="activation value (layer output)")
    if acts is not None:
        figures.append(
            Figure(
                "activation_histograms.png",
                "Activation histograms per layer",
                "The distribution of each layer's output values over the batch (50 bins over the observed range), "
                "as in Glorot & Bengio 2010 (Fig. 3, 6): density on a log axis, one curve per layer. Curves that "
                "narrow with depth show a vanishing signal; a pile-up at ±1 shows tanh saturation; a spike at 0 "
                "shows ReLU's inactive half (or dead units).",
                f"Histograms of activation values per layer for {title}",
                acts,
            )
        )
    grads = _histogram_figure(
        series, "grad_hist", what="Back-propagated gradients", xlabel="gradient value ∂loss/∂output"
    )
    if grads is not None:
        figures.append(
            Figure(
                "gradient_histograms.png",
                "Back-propagated gradient histograms per layer",
                "The distribution of ∂loss/∂output at each layer over the batch, as in Glorot & Bengio 2010 "
                "(Fig. 7): density on a log axis, one curve per layer. Curves that narrow towards the input show "
                "vanishing gradients.",
                f"Histograms of back-propagated gradients per layer for {title}",
                grads,
            )
        )
    low, high = ISOMETRY_BAND
    spectrum = _figures.jacobian_spectrum(
        series, styles, title=f"Input-output Jacobian singular values: {title}", legend_title="scheme"
    )
    if spectrum is not None:
        figures.append(
            Figure(
                "jacobian_spectrum.png",
                "Jacobian singular-value spectrum",
                "Histogram of the singular values of the input-output Jacobian ∂f(x)/∂x, pooled over up to 8 samples "
                f"of the batch, on a log axis (share of all singular values per bin). The shaded band [{low:g}, "
                f"{high:g}] is near-isometry: a spectrum concentrated there propagates signals and gradients without "
                "distortion (Saxe et al. 2014; Pennington et al. 2017). Singular values of exactly 0 are counted in "
                "the legend.",
                f"Histogram of the Jacobian singular values for {title}",
                spectrum,
            )
        )
    return figures


def _rows(series: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """What the HTML and the Markdown show of each diagnosis, numbers already formatted."""
    rows = []
    for label, p in series:
        jac = p.get("jacobian") or {}
        rows.append(
            dict(
                label=label,
                signal_factor=_fmt(p.get("signal_factor")),
                signal_ratio=_fmt(p.get("signal_ratio")),
                loss=(f"{p['loss_name']} {_fmt(p.get('loss'))}" if p.get("loss_name") else "-"),
                grad_ratio=_fmt(p.get("grad_ratio")),
                jac_mean_sq=_fmt(jac.get("mean_sq")),
                jac_within=f"{100 * jac['within']:.0f}%" if jac.get("within") is not None else "-",
                seconds=f"{p.get('seconds', 0.0):.2f}",
                notes=list(p.get("notes", [])),
                findings=[
                    dict(
                        f,
                        figures=", ".join(f"{k}: {v}" for k, v in (f.get("figures") or {}).items()),
                    )
                    for f in p.get("findings", [])
                ],
                layers=[
                    dict(
                        index=layer.get("index"),
                        name=layer.get("name"),
                        module_type=layer.get("module_type"),
                        activation=layer.get("activation"),
                        units=layer.get("units"),
                        pre_std=_fmt(layer.get("pre_std")),
                        mean=_fmt(layer.get("mean")),
                        std=_fmt(layer.get("std")),
                        saturated=_pct(layer.get("saturated")),
                        dead=_pct(layer.get("dead")),
                        duplicates=layer.get("duplicates") or "",
                        grad_output_std=_fmt(layer.get("grad_output_std")),
                        grad_weight_std=_fmt(layer.get("grad_weight_std")),
                    )
                    for layer in p.get("layers", [])
                ],
            )
        )
    return rows


def render_diagnosis_html(series: Sequence[tuple[str, Mapping[str, Any]]], figures: list[Figure], title: str) -> str:
    """The self-contained HTML page of a diagnosis report."""
    from initlab.about import installed_version
    from initlab.report import _figures

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    low, high = ISOMETRY_BAND
    return env.from_string(DIAGNOSIS_TEMPLATE).render(
        style=PAGE_STYLE,
        title=title,
        batch=next((p.get("batch") for _, p in series), "?"),
        any_grads=_figures.has_gradients(series),
        band=f"{low:g}, {high:g}",
        diagnoses=_rows(series),
        figures=[
            dict(title=f.title, caption=f.caption, alt=f.alt, base64=f.base64, width=f.size[0], height=f.size[1])
            for f in figures
        ],
        generator_version=installed_version(),
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


_MD_LAYER_COLUMNS = (
    "index", "name", "activation", "units", "pre_std", "mean", "std", "saturated", "dead", "duplicates",
    "grad_output_std", "grad_weight_std",
)  # fmt: skip


def render_diagnosis_markdown(
    series: Sequence[tuple[str, Mapping[str, Any]]], figures: list[Figure], title: str
) -> str:
    """A Markdown summary: one line per scheme, the findings, the per-layer tables and links to the figures."""
    rows = _rows(series)
    lines = [
        f"# Diagnosis: {_md_cell(title)}",
        "",
        "| scheme | signal factor / layer | last / input std | loss | ∂out first / last | Jacobian mean σ² | "
        "findings |",
        "|:---|---:|---:|---:|---:|---:|:---|",
    ]
    for r in rows:
        kinds = ", ".join(f"{f['kind']} ({f['severity']})" for f in r["findings"]) or "none"
        lines.append(
            f"| {_md_cell(r['label'])} | {r['signal_factor']} | {r['signal_ratio']} | {_md_cell(r['loss'])} | "
            f"{r['grad_ratio']} | {r['jac_mean_sq']} | {kinds} |"
        )
    lines += ["", "## Findings", ""]
    for r in rows:
        for f in r["findings"]:
            lines.append(
                f"- **{f['severity']}** `{f['kind']}` ({_md_cell(r['label'])}; {_md_cell(', '.join(f['layers']))}): "
                f"{_md_cell(f['message'])} Suggestion: {_md_cell(f['suggestion'])}"
            )
        if not r["findings"]:
            lines.append(f"- {_md_cell(r['label'])}: no findings.")
    lines += ["", "## Per-layer statistics", ""]
    for r in rows:
        lines += [
            f"### {_md_cell(r['label'])}",
            "",
            "| # | layer | activation | units | pre std | mean | std | sat % | dead % | dup | ∂out std | ∂W std |",
            "|---:|:---|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for layer in r["layers"]:
            lines.append("| " + " | ".join(_md_cell(layer[k]) for k in _MD_LAYER_COLUMNS) + " |")
        lines.append("")
    lines += ["## Figures", ""]
    lines += [f"- [{f.title}]({f.filename})" for f in figures]
    lines.append("")
    return "\n".join(lines)


def build_diagnosis_report(
    result: Diagnosis | Comparison, out: str | os.PathLike[str], *, title: str | None = None
) -> Path:
    """Write the report of a diagnosis, or of several schemes compared, and return the path of its HTML page.

    ``out`` is a folder (the page is ``out/diagnosis.html``) or a path ending in ``.html``; the figures (PNG) and
    ``diagnosis.md`` go beside the page, each written atomically. The page is self-contained: figures inline as
    base64 PNG, styles inline, no script, and a Content-Security-Policy that forbids any fetch; every label is
    escaped. It shows the findings, the figures (activation and gradient std against depth, histograms of
    activations and back-propagated gradients per layer, the Jacobian's singular values) and the per-layer tables.
    ``title`` defaults to the diagnosis's label (the model and scheme) or, for a comparison, its seed.
    """
    series = _series(result)
    if title is None:
        title = (
            result.label or "diagnosis"
            if isinstance(result, Diagnosis)
            else f"{len(series)} initializations compared (seed {result.seed})"
        )
    out_dir, html_path = _resolve_out(Path(out), out, html_name=DIAGNOSIS_HTML_NAME)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    figures = diagnosis_figures(series, title=title)
    for f in figures:
        write_atomic(out_dir / f.filename, f.png)
    write_atomic(out_dir / DIAGNOSIS_MARKDOWN_NAME, render_diagnosis_markdown(series, figures, title))
    write_atomic(html_path, render_diagnosis_html(series, figures, title))
    logger.info("diagnosis report written to %s", html_path)
    return html_path
