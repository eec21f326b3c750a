"""Reports: plots and a self-contained HTML page of a study, built from its Store.

``build_report(study_dir)`` writes ``study_dir/report/report.html``, one file that opens offline, and a Markdown
summary. Its charts are interactive (the vendored uPlot and the numbers inlined: hover, hide or isolate arms, zoom,
log or linear axes, an epoch slider over stored diagnoses, PNG and SVG export); ``static=True`` draws them with
matplotlib instead, as PNG files and base64 images in a page without script. ``initlab report STUDY_DIR [--static]``
does the same from the command line, and ``initlab compare`` builds one when a study ends.

``build_diagnosis_report(diagnosis_or_comparison, out)`` writes the same kind of page for one diagnosis (or several
schemes side by side): findings, per-layer tables, activation and gradient histograms per layer, std against depth
and the Jacobian's singular values; ``initlab diagnose --report`` builds one.
"""

from initlab.report._build import (
    HTML_NAME,
    MARKDOWN_NAME,
    REPORT_DIRNAME,
    Figure,
    make_figures,
)
from initlab.report._collect import ArmInit, Configuration, InitLayer, StudyData, collect
from initlab.report._diagnosis import DIAGNOSIS_HTML_NAME, DIAGNOSIS_MARKDOWN_NAME, build_diagnosis_report
from initlab.report._page import render_interactive_html
from initlab.report._write import build_report

__all__ = [
    "DIAGNOSIS_HTML_NAME",
    "DIAGNOSIS_MARKDOWN_NAME",
    "HTML_NAME",
    "MARKDOWN_NAME",
    "REPORT_DIRNAME",
    "ArmInit",
    "Configuration",
    "Figure",
    "InitLayer",
    "StudyData",
    "build_diagnosis_report",
    "build_report",
    "collect",
    "make_figures",
    "render_interactive_html",
]
