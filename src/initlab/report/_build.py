"""Build a study's report: figures (PNG), one self-contained HTML page and a Markdown summary."""

from __future__ import annotations

import base64
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

from initlab.fileio import write_atomic
from initlab.report import _figures, _sweep, _sweep_figures
from initlab.report._collect import StudyData, collect
from initlab.report._template import PAGE_STYLE, STUDY_TEMPLATE
from initlab.store import Store
from initlab.studies import ArmSummary, Stat

logger = logging.getLogger(__name__)

REPORT_DIRNAME = "report"
HTML_NAME = "report.html"
MARKDOWN_NAME = "summary.md"
# Diagnostics payloads are free-form; a report shows at most this many values per run so the page stays readable.
_MAX_DIAGNOSTIC_ROWS = 200
# Per arm, the stored diagnoses of its first seed as (epoch, Diagnosis.to_dict() payload), by epoch.
_ArmDiagnoses = dict[str, list[tuple[int, dict[str, Any]]]]


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


def _flatten(value: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Scalar leaves of a JSON payload as (dotted key, text); long lists are summarized, not dumped."""
    if isinstance(value, dict) and depth < 6:
        rows: list[tuple[str, str]] = []
        for k, v in value.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)
        return rows
    if isinstance(value, list):
        if len(value) <= 8 and all(isinstance(v, (int, float, str, bool)) or v is None for v in value):
            return [(prefix, ", ".join(_scalar(v) for v in value))]
        if depth < 6 and len(value) <= 64 and all(isinstance(v, dict) for v in value):
            rows = []
            for i, v in enumerate(value):
                name = v.get("name", v.get("layer", i)) if isinstance(v, dict) else i
                rows += _flatten(v, f"{prefix}[{name}]", depth + 1)
            return rows
        return [(prefix, f"list of {len(value)} values")]
    return [(prefix or "(value)", _scalar(value))]


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _diagnostics(data: StudyData) -> list[dict[str, Any]]:
    """The stored payloads that are not diagnoses (drawn as figures), as tables of their values."""
    out = []
    for run_id, epoch, payload in data.diagnostics:
        if _is_diagnosis(payload):
            continue
        rows = _flatten(payload)
        out.append(
            dict(
                run_id=run_id, epoch=epoch, rows=rows[:_MAX_DIAGNOSTIC_ROWS], truncated=len(rows) > _MAX_DIAGNOSTIC_ROWS
            )
        )
    return out


def _is_diagnosis(payload: Any) -> bool:
    """Whether a stored payload is a ``Diagnosis.to_dict()`` (layers with a name and an output std)."""
    layers = payload.get("layers") if isinstance(payload, dict) else None
    return (
        isinstance(layers, list)
        and bool(layers)
        and all(isinstance(layer, dict) and "name" in layer and "std" in layer for layer in layers)
    )


def _first_seed_diagnoses(data: StudyData) -> _ArmDiagnoses:
    """Per arm (study order), the stored diagnoses ``(epoch, payload)`` of its first seed that has any."""
    by_run: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for run_id, epoch, payload in data.diagnostics:
        if _is_diagnosis(payload):
            by_run.setdefault(run_id, []).append((epoch, payload))
    out = {}
    for arm in data.arms:
        run = next((r for r in data.runs_of(arm) if r.run_id in by_run), None)
        if run is not None:
            out[arm] = sorted(by_run[run.run_id], key=lambda item: item[0])
    return out


def diagnostic_figures(data: StudyData) -> list[Figure]:
    """Figures of the diagnoses a study stored: std against depth at initialization, activation histograms of a few
    layers (at initialization and, when stored, at the last epoch) and, with later epochs, the change in training."""
    runs = _first_seed_diagnoses(data)
    at_init = [(arm, points[0][1]) for arm, points in runs.items() if points[0][0] == 0]
    if not runs:
        return []
    styles = _figures.arm_styles(data.arms)
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


def _depth_figure(
    at_init: list[tuple[str, dict[str, Any]]], styles: Mapping[str, _figures.ArmStyle], model: object
) -> Figure:
    """Activation and gradient std against depth at initialization, one line per arm."""
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
    rows = _spread(list(runs), MAX_HISTOGRAM_ROWS)
    subset = (f" {len(rows)} of the {len(runs)} configurations are shown, evenly spaced in the study's order; every "
              "diagnosis is in the Store and in the JSON export." if len(rows) < len(runs) else "")  # fmt: skip
    runs = {label: runs[label] for label in rows}
    epochs = sorted({points[0][0] for points in runs.values()} | {points[-1][0] for points in runs.values()})
    epoch_styles = _figures.arm_styles([f"epoch {e}" for e in epochs])
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


def _over_training_figure(runs: _ArmDiagnoses, styles: Mapping[str, _figures.ArmStyle], picked: list[str]) -> Figure:
    """Activation and gradient std of the ``picked`` layers against epoch, one line per arm."""
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
    """The report's figures for ``data``: learning curves, initial weight histograms and per-layer norms."""
    # In a sweep, a configuration has its arm's colour and its grid point's line style and marker.
    styles = _sweep_figures.configuration_styles(data) if data.configurations else _figures.arm_styles(data.arms)
    n_seeds = len(data.study.config.get("seeds", []))
    # (file name, title, caption, alt text, drawing); a drawing that returns None (nothing to show) is left out.
    planned: list[tuple[str, str, str, str, Callable[[StudyData, dict[str, _figures.ArmStyle]], bytes | None]]] = [
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
    return dict(title=f.title, caption=f.caption, alt=f.alt, base64=f.base64, width=f.size[0], height=f.size[1])


def render_html(
    data: StudyData,
    figures: list[Figure],
    diag_figures: list[Figure] | None = None,
    *,
    sweep_figures: Sequence[Figure] = (),
    view: _sweep.SweepView | None = None,
) -> str:
    """The self-contained HTML page of the study report; ``diag_figures`` default to :func:`diagnostic_figures`.
    ``sweep_figures`` (:func:`sweep_figures`) go in the page's sweep section, which a study without a sweep lacks."""
    from initlab.about import installed_version

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    template = env.from_string(STUDY_TEMPLATE)
    config = data.study.config
    counts = Counter(r.status for r in data.runs)
    problems = [
        dict(run_id=r.run_id, status=r.status, epoch=r.diverged_epoch, message=r.message)
        for r in sorted(data.runs, key=lambda r: r.run_id)
        if r.status in ("diverged", "failed")
    ]
    target = data.target_accuracy
    if diag_figures is None:
        diag_figures = diagnostic_figures(data)
    runs_with = {run_id for run_id, _, payload in data.diagnostics if _is_diagnosis(payload)}
    return template.render(
        style=PAGE_STYLE,
        diag_figures=[_figure_dict(f) for f in diag_figures],
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
        figures=[_figure_dict(f) for f in figures],
        init_errors=[a for a in data.init if a.error],
        diagnostics=_diagnostics(data),
        sweep_figures=[_figure_dict(f) for f in sweep_figures],
        **_sweep_context(data, view),
        generator_version=installed_version(),
        generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
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


def render_markdown(data: StudyData, figures: list[Figure]) -> str:
    """A short Markdown summary: what ran, the ranked table and links to the figures."""
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
    lines += [f"- [{f.title}]({f.filename})" for f in figures]
    lines.append("")
    return "\n".join(lines)


def build_report(
    study_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    metric: str = "test_acc",
    x: str | None = None,
    y: str | None = None,
) -> Path:
    """Build the report of the study in ``study_dir`` and return the path of its HTML file.

    Writes, each file atomically (a temporary file, then a rename): ``report.html``, one self-contained page (styles
    inline, figures as base64 PNG, no script, nothing fetched from the network); the figures as PNG files; and
    ``summary.md``, the ranked table in Markdown. They go to ``study_dir/report/`` unless ``out`` names another
    folder, or an ``.html`` path (the other files then go beside it). The store is opened read-only, so a report can
    be built while the study runs. Raises ``FileNotFoundError`` when ``study_dir`` holds no study.

    A study with a sweep gets a section of its own: the best configuration per arm, a heatmap of ``metric`` (one of
    :data:`initlab.report._sweep.METRICS`: test_acc, test_loss, val_acc, train_loss, at the end of training) over the
    sweep axes ``x`` and ``y`` (default: its first two), the metric against ``x``, and the best learning rate against
    width when both are swept. ValueError names a metric or axis that does not exist, and the closest one; it is
    raised before anything is drawn.
    """
    folder = Path(study_dir)
    with Store.in_dir(folder, readonly=True) as store:  # the choice is checked before the slow part
        view = _sweep.choose_view(store.study().config.get("sweep") or {}, metric=metric, x=x, y=y)
    data = collect(folder)
    out_dir, html_path = _resolve_out(folder, out)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    figures = make_figures(data)
    diag_figures = diagnostic_figures(data)
    swept = sweep_figures(data, view)
    for f in [*swept, *figures, *diag_figures]:
        write_atomic(out_dir / f.filename, f.png)
    write_atomic(out_dir / MARKDOWN_NAME, render_markdown(data, [*swept, *figures, *diag_figures]))
    write_atomic(html_path, render_html(data, figures, diag_figures, sweep_figures=swept, view=view))
    logger.info("report of %s written to %s", folder, html_path)
    return html_path
