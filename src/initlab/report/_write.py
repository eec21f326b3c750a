"""``build_report``: a study's report written to its folder, interactive (:mod:`initlab.report._page`) or static
(:mod:`initlab.report._build`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from initlab.fileio import write_atomic
from initlab.report import _sweep
from initlab.report._build import (
    MARKDOWN_NAME,
    _resolve_out,
    diagnostic_figures,
    make_figures,
    render_html,
    render_markdown,
    sweep_figures,
)
from initlab.report._collect import collect
from initlab.report._page import render_interactive_html
from initlab.store import Store

logger = logging.getLogger(__name__)


def build_report(
    study_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    metric: str = "test_acc",
    x: str | None = None,
    y: str | None = None,
    static: bool = False,
) -> Path:
    """Build the report of the study in ``study_dir`` and return the path of its HTML file.

    Writes, each file atomically (a temporary file, then a rename): ``report.html``, one self-contained page that
    opens offline (nothing fetched from the network), and ``summary.md``, the ranked table in Markdown. They go to
    ``study_dir/report/`` unless ``out`` names another folder, or an ``.html`` path (the other files then go beside
    it). The store is opened read-only, so a report can be built while the study runs. Raises ``FileNotFoundError``
    when ``study_dir`` holds no study.

    By default the page is interactive: its charts are drawn in the browser by the vendored uPlot (inlined) from
    numbers embedded as JSON: hover for values, click a legend entry to hide an arm, drag to zoom, log or linear y,
    an epoch slider over the stored diagnoses, and PNG and SVG export per chart. Nothing is drawn in Python, so
    it builds in a fraction of the time. ``static=True`` draws every figure with matplotlib instead: PNG files
    beside the page, inline in it as base64, and no script at all.

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
    if not static:
        write_atomic(out_dir / MARKDOWN_NAME, render_markdown(data, [], interactive=True))
        write_atomic(html_path, render_interactive_html(data, view))
        logger.info("interactive report of %s written to %s", folder, html_path)
        return html_path
    figures = make_figures(data)
    diag_figures = diagnostic_figures(data)
    swept = sweep_figures(data, view)
    for f in [*swept, *figures, *diag_figures]:
        write_atomic(out_dir / f.filename, f.png)
    write_atomic(out_dir / MARKDOWN_NAME, render_markdown(data, [*swept, *figures, *diag_figures]))
    write_atomic(html_path, render_html(data, figures, diag_figures, sweep_figures=swept, view=view))
    logger.info("static report of %s written to %s", folder, html_path)
    return html_path
