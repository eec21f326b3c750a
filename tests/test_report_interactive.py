"""The interactive study report in headless Chromium: it loads cleanly and offline, hovering shows values, the legend
hides and isolates arms, the exports have the promised size, the epoch slider swaps the diagnoses, and the verdict
at the top says which arms differ. Also: the build needs no matplotlib, and the embedded JSON cannot end its script.
"""

from __future__ import annotations

import base64
import html
import json
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from _browser import Page, off_machine
from initlab.report import build_report, collect
from initlab.report._page import script_json
from initlab.studies import Study, run_study

# The page of the default study must stay under this size (issue 20); a small study's is far below it.
MAX_PAGE_BYTES = 1_500_000


def _study(folder: Path, inits: str, *, diagnose: list[int] | None = None) -> Path:
    """A digits study on mlp:32 with three seeds and two epochs (a few seconds), as in tests/test_verdict.py."""
    config = {"name": inits, "dataset": "digits", "model": "mlp:32", "inits": inits.split(","), "seeds": 3,
              "train": {"epochs": 2}}  # fmt: skip
    if diagnose is not None:
        config["diagnose_epochs"] = diagnose
    return run_study(Study.from_config(config), folder / inits.replace(",", "-"), workers=1)


@pytest.fixture(scope="module")
def zeros_he(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zeros against He normal, with a diagnosis of every run at initialization and after the last epoch."""
    return _study(tmp_path_factory.mktemp("interactive"), "zeros,he_normal", diagnose=[0, 2])


@pytest.fixture(scope="module")
def page_path(zeros_he: Path) -> Path:
    return build_report(zeros_he)


@pytest.fixture(scope="module")
def page(page_path: Path) -> Iterator[Page]:
    with Page(width=1300, height=900) as p:
        p.goto(page_path.resolve().as_uri())
        p.wait_for("document.documentElement.dataset.ready === '1'", timeout=20)
        yield p


def _chart_box(page: Page, figure: str, index: int) -> dict[str, float]:
    """Scroll chart ``index`` of ``figure`` into view and return its plotting area (viewport CSS pixels)."""
    return page.evaluate(
        f"""(() => {{ const u = initlabReport.figures[{json.dumps(figure)}].charts[{index}].u;
            u.root.scrollIntoView({{block: "center"}}); const r = u.over.getBoundingClientRect();
            return {{left: r.left, top: r.top, width: r.width, height: r.height}}; }})()"""
    )


def _mouse(page: Page, kind: str, x: float, y: float, **extra: object) -> None:
    page.browser.send("Input.dispatchMouseEvent", page.session, type=kind, x=x, y=y, **extra)


# -- the page ------------------------------------------------------------------------------------------------------
def test_page_loads_without_errors_or_requests_and_draws_every_chart(page: Page, page_path: Path) -> None:
    assert page.errors() == []
    assert off_machine(page.requests()) == []
    counts = page.evaluate(
        "Object.fromEntries(Object.entries(initlabReport.figures).map(([k, f]) => [k, f.charts.length]))"
    )
    assert counts["learning-curves"] == 4
    assert counts["initial-weights"] == 2  # mlp:32 has two weight tensors
    assert counts["layer-norms"] == 4  # two weight layers (hidden, output) x (weight norm, gradient norm)
    assert counts["diagnoses"] >= 4
    # Every chart drew something: a canvas of the size it was given.
    sizes = page.evaluate("Object.values(initlabReport.figures).flatMap(f => f.charts.map(c => c.u.ctx.canvas.width))")
    assert min(sizes) > 200
    text = page_path.read_text(encoding="utf-8")
    assert len(text.encode()) < MAX_PAGE_BYTES
    # Self-contained: uPlot inlined, no src or href that leaves the page, a policy that allows no fetch.
    assert "uPlot" in text
    assert not re.search(r'(src|href)="(?!data:)', text)
    assert "default-src &#39;none&#39;" in text
    assert "script-src &#39;sha256-" in text


def test_hovering_a_point_shows_its_value(page: Page, zeros_he: Path) -> None:
    data = collect(zeros_he, with_init=False)
    _, values = data.series("he_normal", "val_acc")
    expected = float(np.nanmean(values[:, 1]) * 100.0)  # epoch 2, in percent
    box = _chart_box(page, "learning-curves", 3)  # validation accuracy
    x = page.evaluate("initlabReport.figures['learning-curves'].charts[3].u.valToPos(2, 'x')")
    y = box["top"] + box["height"] / 2
    # Epoch 2 is the last, at the right edge of the plot: point just inside it (the nearest point is still epoch 2).
    _mouse(page, "mouseMoved", box["left"] + x - 30, y)
    _mouse(page, "mouseMoved", box["left"] + x - 3, y)
    rows = page.wait_for(
        """(() => { const t = initlabReport.figures['learning-curves'].charts[3].u.initlab.tip;
            if (t.hidden) return null;
            return Array.from(t.querySelectorAll('.tip-row')).map(r => [r.dataset.key, +r.dataset.value,
                r.textContent]); })()"""
    )
    shown = {key: (value, text) for key, value, text in rows}
    assert shown["he_normal"][0] == pytest.approx(expected, rel=1e-4)
    assert f"{expected:.4g}"[:4] in shown["he_normal"][1]
    assert page.evaluate("initlabReport.figures['learning-curves'].charts[3].u.initlab.tip.textContent").startswith(
        "epoch: 2"
    )
    # The cursor is synced: the training accuracy panel points at the same epoch.
    assert page.evaluate("initlabReport.figures['learning-curves'].charts[2].u.cursor.idx") == 1
    _mouse(page, "mouseMoved", 5, 5)


def test_clicking_a_legend_entry_hides_the_arm_in_every_panel_and_double_click_isolates(page: Page) -> None:
    shown = """initlabReport.figures['learning-curves'].charts.map(c =>
        c.u.series.slice(1).filter((s, i) => c.u.initlab.owner[i] === %s).map(s => s.show))"""
    button = "document.querySelector('#learning-curves .legend-item[data-key=\"zeros\"]')"
    page.evaluate(f"{button}.click()")
    assert page.evaluate(shown % '"zeros"') == [[False] * 3] * 4  # the mean and the band's two edges
    assert page.evaluate(shown % '"he_normal"') == [[True] * 3] * 4
    assert page.evaluate(f"{button}.classList.contains('off')")
    page.evaluate(f"{button}.click()")
    assert page.evaluate(shown % '"zeros"') == [[True] * 3] * 4
    page.evaluate(f"{button}.dispatchEvent(new MouseEvent('dblclick', {{bubbles: true}}))")
    assert page.evaluate(shown % '"he_normal"') == [[False] * 3] * 4
    assert page.evaluate(shown % '"zeros"') == [[True] * 3] * 4
    page.evaluate("document.querySelector('#learning-curves .legend-all').click()")
    assert page.evaluate(shown % '"he_normal"') == [[True] * 3] * 4


def test_png_export_has_the_expected_size_and_svg_draws_each_arm(page: Page) -> None:
    url, width, height, arms = page.evaluate(
        """(() => { const u = initlabReport.figures['learning-curves'].charts[0].u;
            return [initlabReport.png('learning-curves', 0), u.ctx.canvas.width, u.ctx.canvas.height,
                    initlabReport.figures['learning-curves'].spec.legend.length]; })()"""
    )
    assert url.startswith("data:image/png;base64,")
    png = base64.b64decode(url.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    size = struct.unpack(">II", png[16:24])
    layout = page.evaluate("initlabReport.layout")
    css_width = page.evaluate("initlabReport.figures['learning-curves'].charts[0].u.width")
    cols = max(1, css_width // layout["LEGEND_COL_W"])
    rows = -(-arms // cols)
    ratio = width / css_width  # devicePixelRatio: 1 here
    expected = height + round((layout["TITLE_H"] + rows * layout["LEGEND_ROW_H"] + layout["LEGEND_PAD"]) * ratio)
    assert size == (width, expected)
    assert width > 300
    svg = ET.fromstring(page.evaluate("initlabReport.svg('learning-curves', 0)"))
    ns = "{http://www.w3.org/2000/svg}"
    assert svg.tag == f"{ns}svg"
    polylines = svg.findall(f".//{ns}polyline")
    assert len(polylines) == arms  # one mean line per arm
    assert all(len(p.get("points", "").split()) == 2 for p in polylines)  # two epochs each


def test_log_toggle_and_the_epoch_slider(page: Page) -> None:
    distr = "initlabReport.figures['learning-curves'].charts[0].u.scales.y.distr"
    assert page.evaluate(distr) == 3  # losses start on a log axis
    page.evaluate("document.querySelector('#learning-curves .toolbar input[type=checkbox]').click()")
    assert page.evaluate(distr) == 1
    page.evaluate("document.querySelector('#learning-curves .toolbar input[type=checkbox]').click()")
    assert page.evaluate(distr) == 3
    # The diagnoses' slider: epoch 0, then epoch 2, whose statistics differ (two epochs of training in between).
    std = "initlabReport.figures['diagnoses'].charts[0].u.data.slice(1).map(s => s.slice())"
    assert page.evaluate("document.querySelector('#diagnoses .frame-value').textContent") == "0"
    before = page.evaluate(std)
    page.evaluate("initlabReport.setFrame('diagnoses', 1)")
    assert page.evaluate("document.querySelector('#diagnoses .frame-value').textContent") == "2"
    after = page.evaluate(std)
    assert len(before) == len(after) == 2
    assert before != after
    assert page.errors() == []


# -- the verdict ---------------------------------------------------------------------------------------------------
def _verdict(page_path: Path) -> str:
    text = page_path.read_text(encoding="utf-8")
    section = text.split('<section id="verdict">')[1].split("</section>")[0]
    return html.unescape(re.sub(r"<[^>]+>", " ", section))


def test_the_verdict_says_zeros_and_he_differ(page_path: Path) -> None:
    verdict = _verdict(page_path)
    assert "Best by mean test accuracy: he_normal." in verdict
    assert "Every other configuration is worse by the paired t-test" in verdict
    assert re.search(r"zeros failed: [^.]*symmetry not broken", verdict)
    assert "indistinguishable" not in verdict


def test_the_verdict_says_he_normal_and_he_uniform_are_indistinguishable(tmp_path: Path) -> None:
    verdict = _verdict(build_report(_study(tmp_path, "he_normal,he_uniform", diagnose=[])))
    best = re.search(r"Best by mean test accuracy: (he_normal|he_uniform)\.", verdict)
    assert best is not None
    other = "he_uniform" if best.group(1) == "he_normal" else "he_normal"
    assert f"Statistically indistinguishable from it: {other}" in verdict


# -- the build -----------------------------------------------------------------------------------------------------
def test_the_interactive_build_never_imports_matplotlib(zeros_he: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from initlab.report import build_report; "
        f"build_report({str(zeros_he)!r}, {str(tmp_path / 'r')!r}); "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"
    assert not list((tmp_path / "r").glob("*.png"))


def test_embedded_json_cannot_end_its_script() -> None:
    evil = {"label": "</script><script>alert(1)</script><!-- & \u2028"}
    text = script_json(evil)
    assert "<" not in text
    assert ">" not in text
    assert "&" not in text
    assert "\u2028" not in text
    assert json.loads(text) == evil
