"""Build a study's report: one self-contained HTML page and a Markdown summary, and with ``static`` the figures as PNG.

The default page is interactive: the figures' numbers (:mod:`initlab.report._charts`, numpy only) are embedded as JSON
and drawn in the browser by the vendored uPlot and ``report.js``, both inlined, so the build needs neither matplotlib
nor a second pass over the data. ``static=True`` (``initlab report --static``) draws every figure with matplotlib
(:mod:`initlab.report._figures`) into PNG files and a page without script, as the report always did.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import math
import os
import struct
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2

from initlab.report import _sweep
from initlab.report._collect import StudyData
from initlab.report._stored import _ArmDiagnoses, _diagnostics, _first_seed_diagnoses, _is_diagnosis
from initlab.report._styles import ArmStyle, arm_styles, styles_for
from initlab.report._template import PAGE_STYLE, STATIC_CSP, STUDY_TEMPLATE
from initlab.studies import ArmSummary, Stat

logger = logging.getLogger(__name__)

REPORT_DIRNAME = "report"
HTML_NAME = "report.html"
MARKDOWN_NAME = "summary.md"


@dataclass(frozen=True)
class Figure:
    """One figure of the report: its file name, texts and PNG bytes."""

    filename: str
    title: str
    caption: str
    alt: str
    png: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.png).decode("ascii")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, read from the PNG header (IHDR)."""
        width, height = struct.unpack(">II", self.png[16:24])
        return int(width), int(height)


def _resolve_out(study_dir: Path, out: str | os.PathLike[str] | None, html_name: str = HTML_NAME) -> tuple[Path, Path]:
    """(folder for the figures and summary, HTML path). ``out`` is a folder, or a path ending in ``.html``."""
    if out is None:
        folder = study_dir / REPORT_DIRNAME
        return folder, folder / html_name
    path = Path(out)
    if path.suffix.lower() in (".html", ".htm"):
        return path.parent, path
    return path, path / html_name


# Accuracies in percent can only lie in [0, 100]; a t-interval over two seeds (t = 12.7) often reaches past them.
_ACCURACY_RANGE = (0.0, 100.0)
# Losses (cross-entropy, BCE, squared error) are never negative.
_LOSS_RANGE = (0.0, math.inf)


def _ci(stat: Stat, scale: float = 1.0, digits: int = 2, clip: tuple[float, float] | None = None) -> str:
    """The 95% interval as ``[lo, hi]``; clipped to ``clip`` when given, with a ``*`` when the clip changed it."""
    if stat.n < 2 or not math.isfinite(stat.ci95):
        return "-"
    lo, hi = (stat.mean - stat.ci95) * scale, (stat.mean + stat.ci95) * scale
    mark = ""
    if clip is not None and (lo < clip[0] or hi > clip[1]):
        lo, hi, mark = max(lo, clip[0]), min(hi, clip[1]), "*"
    return f"[{lo:.{digits}f}, {hi:.{digits}f}]{mark}"


def _reach(r: ArmSummary) -> str:
    if r.reached_target == 0:
        return "never"
    text = r.epochs_to_target.text(digits=1)
    if r.reached_target < r.runs:
        text += f" ({r.reached_target}/{r.runs} runs)"
    return text


def _ranked_rows(summary: Iterable[ArmSummary]) -> list[dict[str, Any]]:
    return [
        dict(
            rank=r.rank,
            arm=r.arm,
            acc=r.test_acc.text(100.0),
            acc_ci=_ci(r.test_acc, 100.0, clip=_ACCURACY_RANGE),
            loss=r.test_loss.text(digits=3),
            loss_ci=_ci(r.test_loss, digits=3, clip=_LOSS_RANGE),
            reach=_reach(r),
            diverged=f"{r.diverged}/{r.runs}" if r.diverged else "0",
            failed=str(r.failed),
            runs=r.runs,
            finished=r.finished,
        )
        for r in summary
    ]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(float(seconds), 60.0)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours} h {minutes} min {secs:.0f} s"
    if minutes:
        return f"{minutes} min {secs:.0f} s"
    return f"{secs:.1f} s"


def _training(config: dict[str, Any]) -> str:
    t = config.get("train", {})
    length = f"{t['epochs']} epochs" if t.get("epochs") else f"{t.get('steps')} steps"
    return (
        f"{t.get('optimizer', '?')} lr {t.get('lr', '?')}, batch {t.get('batch_size', '?')}, {length}, "
        f"{t.get('schedule', 'constant')} schedule, {t.get('loss', '?')} loss, {t.get('precision', 'float32')}"
    )


def _machine(meta: dict[str, Any]) -> str:
    parts = [str(meta.get("cpu") or meta.get("machine") or "unknown CPU")]
    if meta.get("cpu_count"):
        parts.append(f"{meta['cpu_count']} cores")
    if meta.get("torch_threads"):
        parts.append(f"{meta['torch_threads']} torch threads")
    if meta.get("device"):
        parts.append(f"device {meta['device']}" + (f" ({meta['device_name']})" if meta.get("device_name") else ""))
    if meta.get("platform"):
        parts.append(str(meta["platform"]))
    if meta.get("hostname"):
        parts.append(f"host {meta['hostname']}")
    return ", ".join(parts)


def diagnostic_figures(data: StudyData) -> list[Figure]:
    """Figures of the diagnoses a study stored: std against depth at initialization, activation histograms of a few
    layers (at initialization and, when stored, at the last epoch) and, with later epochs, the change in training."""
    runs = _first_seed_diagnoses(data)
    at_init = [(arm, points[0][1]) for arm, points in runs.items() if points[0][0] == 0]
    if not runs:
        return []
    styles = arm_styles(data.arms)
    model = data.study.config.get("model", "")
    figures = []
    if at_init:
        figures.append(_depth_figure(at_init, styles, model))
    picked = _picked_layers(runs)
    figures.append(_histogram_figure(runs, picked, model))
    if any(len(points) > 1 for points in runs.values()):
        figures.append(_over_training_figure(runs, styles, picked))
    return figures


def _picked_layers(runs: _ArmDiagnoses) -> list[str]:
    """The first, a middle and the last layer of the deepest stored diagnosis (all of them when there are 3 or less)."""
    payloads = [payload for points in runs.values() for _, payload in points]
    names = [str(layer["name"]) for layer in max((p["layers"] for p in payloads), key=len)]
    return [names[0], names[len(names) // 2], names[-1]] if len(names) > 3 else names


def _depth_figure(at_init: list[tuple[str, dict[str, Any]]], styles: Mapping[str, ArmStyle], model: object) -> Figure:
    """Activation and gradient std against depth at initialization, one line per arm."""
    from initlab.report import _figures  # matplotlib: the static report only

    return Figure(
        "diagnostics_depth.png",
        "Activation and gradient std by layer at initialization",
        "The std of each layer's output (left) and of the back-propagated gradient ∂loss/∂output (right) over "
        "the diagnosis batch, at initialization (epoch 0), layers in call order; one line per arm, its first "
        "seed. A flat profile keeps the signal and the gradient at one scale through depth (Glorot & Bengio "
        "2010; He et al. 2015). Log scale (symmetric log, linear near 0, when a std is exactly 0).",
        "Per-layer activation std and gradient std at initialization, one line per arm",
        _figures.depth_profile(
            at_init,
            styles,
            title=f"Signal and gradient by layer at initialization (first seed of each arm); {model}",
            legend_title="arm (init scheme)",
        ),
    )


#: The most rows (arms or configurations) the histogram figure draws. Each row is a row of log-scale panels, and
#: matplotlib lays every panel out: a sweep's 36 configurations x 3 layers took 27 s of a 44 s report (2-core AMD
#: EPYC), 12 rows take about a third of that.
MAX_HISTOGRAM_ROWS = 12


def _spread(labels: list[str], count: int) -> list[str]:
    """``count`` of ``labels``, evenly spaced in their order, the first and the last included."""
    if len(labels) <= count:
        return labels
    return [labels[round(i * (len(labels) - 1) / (count - 1))] for i in range(count)]


def _histogram_figure(runs: _ArmDiagnoses, picked: list[str], model: object) -> Figure:
    """Activation histograms of the ``picked`` layers, one row per arm, at its first and last diagnosed epoch (at
    most :data:`MAX_HISTOGRAM_ROWS` rows, evenly spaced over the study's arms or configurations)."""
    from initlab.report import _figures  # matplotlib: the static report only

    rows = _spread(list(runs), MAX_HISTOGRAM_ROWS)
    subset = (f" {len(rows)} of the {len(runs)} configurations are shown, evenly spaced in the study's order; every "
              "diagnosis is in the Store and in the JSON export." if len(rows) < len(runs) else "")  # fmt: skip
    runs = {label: runs[label] for label in rows}
    epochs = sorted({points[0][0] for points in runs.values()} | {points[-1][0] for points in runs.values()})
    epoch_styles = arm_styles([f"epoch {e}" for e in epochs])
    panels = []
    for points in runs.values():
        shown = {points[0][0]: points[0][1], points[-1][0]: points[-1][1]}
        for name in picked:
            curves = []
            for epoch, payload in sorted(shown.items()):
                layer = next((x for x in payload["layers"] if x.get("name") == name), None)
                curves.append((f"epoch {epoch}", layer.get("hist") if layer else None))
            panels.append((name, curves))
    when = (
        ", at initialization (epoch 0) and at the last epoch with a stored diagnosis."
        if len(epochs) > 1
        else ", at initialization."
    )
    return Figure(
        "diagnostics_histograms.png",
        "Activation histograms per layer",
        "The distribution of the outputs of the first, a middle and the last layer over the diagnosis batch "
        f"(Glorot & Bengio 2010 style: density on a log axis), one row per arm (first seed){when} Each panel has "
        f"its own x range.{subset}",
        "Histograms of activation values of the first, a middle and the last layer for each arm",
        _figures.histogram_panels(
            panels,
            epoch_styles,
            ncols=len(picked),
            xlabel="activation value (layer output)",
            title=f"Activation values per layer, first seed of each arm; {model}",
            legend_title="diagnosed at",
            row_labels=list(runs),
        ),
    )


def _over_training_figure(runs: _ArmDiagnoses, styles: Mapping[str, ArmStyle], picked: list[str]) -> Figure:
    """Activation and gradient std of the ``picked`` layers against epoch, one line per arm."""
    from initlab.report import _figures  # matplotlib: the static report only

    return Figure(
        "diagnostics_over_training.png",
        "Activation and gradient std over training",
        "The std of the outputs (top) and of the back-propagated gradients (bottom) of the first, a middle and "
        "the last layer at each epoch with a stored diagnosis (epoch 0: at initialization), one line per arm "
        "(first seed). Log scale (symmetric log when a std is exactly 0).",
        "Per-layer activation std and gradient std against epoch for each arm",
        _figures.diagnostics_over_training(
            runs,
            styles,
            picked,
            title="Signal and gradient std of a few layers during training (first seed of each arm)",
        ),
    )


def make_figures(data: StudyData) -> list[Figure]:
    """The static report's figures for ``data`` (matplotlib): learning curves, initial weight histograms and
    per-layer norms."""
    from initlab.report import _figures

    # In a sweep, a configuration has its arm's colour and its grid point's line style and marker.
    styles = styles_for(data)
    n_seeds = len(data.study.config.get("seeds", []))
    # (file name, title, caption, alt text, drawing); a drawing that returns None (nothing to show) is left out.
    planned: list[tuple[str, str, str, str, Callable[[StudyData, dict[str, ArmStyle]], bytes | None]]] = [
        (
            "learning_curves.png",
            "Learning curves",
            f"Training and validation loss (log scale) and accuracy against epoch. Each line is the mean over the "
            f"{n_seeds} seeds of one arm; the shaded band spans the minimum to the maximum over seeds. Diverged runs "
            f"stop before the epoch in which they diverged. The dotted line marks the target validation accuracy.",
            "Learning curves: training and validation loss and accuracy per epoch for each arm",
            _figures.learning_curves,
        ),
        (
            "initial_weights.png",
            "Initial weight distributions",
            "Histograms of the weights of the first, a middle and the last layer right after initialization, "
            "before any training step: the model was rebuilt from the study config and initialized with each "
            "arm's scheme and first seed. Each panel has its own x range; a constant tensor (zeros, ones) is one "
            "bar.",
            "Histograms of the initial weights of the first, a middle and the last layer for each arm",
            _figures.initial_histograms,
        ),
        (
            "layer_norms.png",
            "Per-layer weight and gradient norms",
            "Top: the Frobenius norm of each weight matrix at the end of each epoch (epoch 0: at initialization, "
            "rebuilt with the first seed). Bottom: the root mean square of the gradient norm over the steps "
            "sampled in each epoch. Mean over seeds, band = min–max over seeds, symmetric log scale (linear "
            "below 0.001, so a zero norm is drawn at 0).",
            "Per-layer weight norm and gradient norm against epoch for each arm",
            _figures.layer_norms,
        ),
    ]
    figures: list[Figure] = []
    for filename, title, caption, alt, draw in planned:
        png = draw(data, styles)
        if png is not None:
            figures.append(Figure(filename, title, caption, alt, png))
    return figures


def sweep_figures(data: StudyData, view: _sweep.SweepView | None = None) -> list[Figure]:
    """The figures of a study with a sweep (:mod:`initlab.report._sweep_figures`): a heatmap of ``view.metric`` over
    two axes, the metric against one axis, and the best learning rate against width when both are swept. ``view``
    defaults to final test accuracy over the sweep's first two axes; ``[]`` without a sweep."""
    from initlab.report import _sweep_figures  # matplotlib: the static report only

    if view is None:
        view = _sweep.choose_view(data.sweep)
    if view is None or not data.configurations:
        return []
    return [Figure(*planned) for planned in _sweep_figures.figures(data, view)]


def _sweep_context(data: StudyData, view: _sweep.SweepView | None) -> dict[str, Any]:
    """What the page's sweep section shows: the axes, the best configuration per arm, and what the figures show."""
    if not data.configurations:
        return dict(sweep=[], sweep_note="", best_rows=[], n_points=1, n_arms=len(data.arms))
    view = view or _sweep.choose_view(data.sweep)
    metric = _sweep.METRICS[view.metric if view else "test_acc"]
    n_points = math.prod(len(v) for v in data.sweep.values())
    return dict(
        sweep=[dict(axis=k, text=", ".join(_sweep.value_text(v) for v in vs)) for k, vs in data.sweep.items()],
        sweep_note=f"The figures show the {metric.title}"
        + (f" over {view.x} and {view.y or 'arm'}" if view else "")
        + "; initlab report --metric, --x and --y choose another metric and other axes.",
        best_rows=_sweep.best_rows(data),
        n_points=n_points,
        n_arms=len(data.sweep_arms()),
    )


def _figure_dict(f: Figure) -> dict[str, Any]:
    """What the page's figure macro reads of a figure."""
    return dict(
        kind="image", title=f.title, caption=f.caption, alt=f.alt, base64=f.base64, width=f.size[0], height=f.size[1]
    )


@functools.lru_cache(maxsize=1)
def _study_template() -> jinja2.Template:
    """The study page's template, compiled once per process (compiling it costs a tenth of a second)."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(STUDY_TEMPLATE)


def _render(data: StudyData, view: _sweep.SweepView | None, **context: Any) -> str:
    """The study page with ``context`` (figures, diagnoses, scripts and the policy) and everything else it shows."""
    from initlab.about import installed_version

    template = _study_template()
    config = data.study.config
    counts = Counter(r.status for r in data.runs)
    problems = [
        dict(run_id=r.run_id, status=r.status, epoch=r.diverged_epoch, message=r.message)
        for r in sorted(data.runs, key=lambda r: r.run_id)
        if r.status in ("diverged", "failed")
    ]
    target = data.target_accuracy
    runs_with = {run_id for run_id, _, payload in data.diagnostics if _is_diagnosis(payload)}
    return template.render(
        diag_note=f"{len(runs_with)} runs with diagnoses stored; the figures show each arm's first seed",
        study=data.study,
        study_dir=str(data.study_dir),
        config=config,
        config_json=json.dumps(config, indent=2, sort_keys=True),
        meta=data.study.meta,
        machine=_machine(data.study.meta),
        training=_training(config),
        duration=_duration(data.study.duration_s),
        arms=data.arms,
        runs=data.runs,
        status_counts=", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none",
        target=f"{target:.0%}" if math.isfinite(target) else "target",
        ranked=_ranked_rows(data.summary),
        verdict=data.verdict.sentences(),
        problems=problems,
        init_errors=[a for a in data.init if a.error],
        diagnostics=_diagnostics(data),
        **_sweep_context(data, view),
        generator_version=installed_version(),
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **context,
    )


def render_html(
    data: StudyData,
    figures: list[Figure],
    diag_figures: list[Figure] | None = None,
    *,
    sweep_figures: Sequence[Figure] = (),
    view: _sweep.SweepView | None = None,
) -> str:
    """The static HTML page of the study report (figures as base64 PNG, no script); ``diag_figures`` default to
    :func:`diagnostic_figures`. ``sweep_figures`` (:func:`sweep_figures`) go in the page's sweep section, which a
    study without a sweep lacks."""
    if diag_figures is None:
        diag_figures = diagnostic_figures(data)
    return _render(
        data,
        view,
        style=PAGE_STYLE,
        csp=STATIC_CSP,
        figures=[_figure_dict(f) for f in figures],
        diag_figures=[_figure_dict(f) for f in diag_figures],
        sweep_figures=[_figure_dict(f) for f in sweep_figures],
        scripts=[],
        data_json="",
    )


def _md_cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _md_runs(data: StudyData) -> str:
    """The Markdown line that counts the runs: arms × seeds, or with a sweep arms × grid points × seeds."""
    seeds = len(data.study.config.get("seeds", []))
    if not data.configurations:
        return f"- {len(data.arms)} arms × {seeds} seeds = {len(data.runs)} runs"
    axes = "; ".join(f"{k}: {', '.join(_sweep.value_text(v) for v in vs)}" for k, vs in data.sweep.items())
    points = math.prod(len(vs) for vs in data.sweep.values())
    arms = len(data.sweep_arms())
    return f"- {arms} arms × {points} grid points ({_md_cell(axes)}) × {seeds} seeds = {len(data.runs)} runs"


def render_markdown(data: StudyData, figures: list[Figure], *, interactive: bool = False) -> str:
    """A short Markdown summary: what ran, the ranked table and links to the figures (``interactive``: a note that
    they are in the HTML page, whose figures are not files)."""
    config, meta = data.study.config, data.study.meta
    target = f"{data.target_accuracy:.0%}" if math.isfinite(data.target_accuracy) else "target"
    lines = [
        f"# Study report: {_md_cell(data.study.name)}",
        "",
        f"- data set: {_md_cell(config.get('dataset'))}; model: `{_md_cell(config.get('model'))}`",
        f"- training: {_md_cell(_training(config))}",
        _md_runs(data),
        f"- started {data.study.started_at or 'not started'}, duration {_duration(data.study.duration_s)}",
        f"- initlab {meta.get('initlab', '?')}, torch {meta.get('torch', '?')}, Python {meta.get('python', '?')}",
        f"- machine: {_md_cell(_machine(meta))}",
        "",
        "## Verdict",
        "",
        *(f"- {_md_cell(line)}" for line in data.verdict.sentences()),
        "",
        f"## Ranked {'configurations' if data.configurations else 'arms'} (mean ± std over seeds; 95% interval: "
        "Student's t, clipped to [0, 100] % or [0, ∞): *)",
        "",
        f"| # | {'configuration' if data.configurations else 'arm'} | test acc (%) | 95% interval | test loss | "
        f"95% interval | epochs to {target} | diverged |",
        "|---:|:---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in _ranked_rows(data.summary):
        lines.append(
            f"| {r['rank']} | {_md_cell(r['arm'])} | {r['acc']} | {r['acc_ci']} | {r['loss']} | {r['loss_ci']} | "
            f"{r['reach']} | {r['diverged']} |"
        )
    if data.configurations:
        lines += ["", "## Best configuration per arm (highest mean test accuracy)", ""]
        lines += ["| arm | configuration | # | test acc (%) | test loss | finished | diverged |"]
        lines += ["|:---|:---|---:|---:|---:|---:|---:|"]
        lines += [
            f"| {_md_cell(r['arm'])} | {_md_cell(r['point'])} | {r['rank']} | {r['acc']} | {r['loss']} | "
            f"{r['runs']} | {r['diverged']} |"
            for r in _sweep.best_rows(data)
        ]
    lines += ["", "## Figures", ""]
    if interactive:
        lines.append(
            f"Interactive, in [{HTML_NAME}]({HTML_NAME}) (each chart saves itself as PNG or SVG); "
            "`initlab report --static` writes them as PNG files."
        )
    lines += [f"- [{f.title}]({f.filename})" for f in figures]
    lines.append("")
    return "\n".join(lines)
