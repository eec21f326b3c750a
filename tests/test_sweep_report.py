"""The report and the export of a study with a sweep: the heatmap's numbers against the Store, the marks for diverged
and unfinished configurations, the lines and best-learning-rate figures, ``initlab report --metric/--x/--y``, the
page in headless Chromium, and a column per sweep axis in ``initlab export``."""

from __future__ import annotations

import csv
import html
import json
import math
import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from typer.testing import CliRunner

from _browser import Page, assert_renders_cleanly, off_machine
from initlab.cli import app
from initlab.report import build_report, collect
from initlab.report._sweep import METRICS, SweepView, best_lr_by_width, choose_view, grids, lines
from initlab.report._sweep_figures import configuration_styles, heatmap_figure, lines_figure
from initlab.store import Store
from initlab.studies import Arm, Study, run_study, summarize
from initlab.studies.summary import best_per_arm
from initlab.training import TrainSettings

SCALES = (0.5, 1.0, 2.0)
# 1000 makes every SGD run blow up in its first epoch (the loss passes max_loss or turns NaN): a configuration whose
# runs all diverged.
LRS = (0.05, 0.5, 1000.0)
ARMS = ("he_normal", "lecun_normal")


def label(arm: str, lr: float, scale: float) -> str:
    """The label a configuration's runs are stored under, written out here rather than taken from initlab."""
    return f"{arm}@lr={lr:g},scale={scale:g}"


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 arms x 3 scales x 3 learning rates x 2 seeds on digits, 2 epochs (about 4 s); no diagnoses, whose per-run
    histograms would cost more than the rest of the report."""
    study = Study(
        name="sweep",
        dataset="digits",
        model="mlp:16",
        arms=tuple(Arm(a, a) for a in ARMS),
        seeds=(0, 1),
        train=TrainSettings(optimizer="sgd", lr=0.1, epochs=2, batch_size=64),
        diagnose_epochs=(),
        sweep={"scale": list(SCALES), "lr": list(LRS)},
    )
    return run_study(study, tmp_path_factory.mktemp("sweep") / "s", workers=1)


@pytest.fixture(scope="session")
def sweep_report(sweep_dir: Path) -> Path:
    """The static report (matplotlib PNGs), whose figures the tests below read."""
    return build_report(sweep_dir, static=True)


@pytest.fixture(scope="session")
def interactive_sweep_report(sweep_dir: Path) -> Path:
    """The interactive report (the default), in a folder of its own."""
    return build_report(sweep_dir, sweep_dir / "interactive")


@pytest.fixture(scope="session")
def width_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Width x learning rate (two populations: a width is an architecture of its own), 1 seed, 1 epoch (about 2 s)."""
    study = Study(
        name="widths",
        dataset="digits",
        model="mlp:16,16",
        arms=tuple(Arm(a, a) for a in ARMS),
        seeds=(0,),
        train=TrainSettings(optimizer="sgd", lr=0.1, epochs=1, batch_size=64),
        diagnose_epochs=(),
        sweep={"width": [8, 32], "lr": [0.03, 0.3]},
    )
    return run_study(study, tmp_path_factory.mktemp("widths") / "w", workers=1)


# -- what the figures are drawn from -------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["test_acc", "test_loss"])
def test_heatmap_matrix_is_the_mean_per_configuration_of_the_summary(sweep_dir: Path, metric: str) -> None:
    with Store.in_dir(sweep_dir, readonly=True) as store:
        rows = {r.arm: r for r in summarize(store)}
    data = collect(sweep_dir, with_init=False)
    view = choose_view(data.sweep, metric=metric)
    assert view == SweepView(metric=metric, x="lr", y="scale")  # the sweep's axes in order: lr, then scale
    panels, best_over = grids(data, view)
    assert best_over == []
    assert [p.title for p in panels] == list(ARMS)
    for arm, panel in zip(ARMS, panels, strict=True):
        assert (panel.x_axis, panel.x_values, panel.y_axis, panel.y_values) == ("lr", LRS, "scale", SCALES)
        matrix = panel.matrix()
        assert matrix.shape == (len(SCALES), len(LRS))
        for i, scale in enumerate(SCALES):
            for j, lr in enumerate(LRS):
                stat = getattr(rows[label(arm, lr, scale)], metric)
                if stat.n == 0:
                    assert math.isnan(matrix[i, j])
                else:
                    assert matrix[i, j] == pytest.approx(stat.mean, rel=1e-12, abs=0.0)
    # Something was compared: most configurations have a value, and the lr = 1000 column has none.
    assert sum(r.test_acc.n > 0 for r in rows.values()) >= 10
    assert all(rows[label(a, 1000.0, s)].test_acc.n == 0 for a in ARMS for s in SCALES)


def test_every_diverged_configuration_is_marked(sweep_dir: Path) -> None:
    with Store.in_dir(sweep_dir, readonly=True) as store:
        runs = store.runs()
    data = collect(sweep_dir, with_init=False)
    panels, _ = grids(data, SweepView("test_acc", "lr", "scale"))
    for arm, panel in zip(ARMS, panels, strict=True):
        for i, scale in enumerate(SCALES):
            for j, lr in enumerate(LRS):
                mine = [r for r in runs if r.arm == label(arm, lr, scale)]
                diverged = sum(r.status == "diverged" for r in mine)
                cell = panel.cells[i][j]
                assert cell is not None
                assert (cell.diverged, cell.runs, len(mine)) == (diverged, 2, 2)
                if diverged == len(mine):
                    assert cell.state == "diverged"
                elif diverged:
                    assert cell.state == "some_diverged"
                else:
                    assert cell.state == "ok"
        assert [row[2].state for row in panel.cells] == ["diverged"] * 3  # lr = 1000


@pytest.fixture
def altered_sweep(sweep_dir: Path, tmp_path: Path) -> Path:
    """The sweep with one run of he_normal@lr=0.5,scale=1 diverged and both runs of lecun_normal@lr=0.05,scale=2
    failed, so that the three marks all show."""
    copy = tmp_path / "altered"
    shutil.copytree(sweep_dir, copy, ignore=shutil.ignore_patterns("report", "checkpoints"))
    with Store.in_dir(copy) as store:
        store.set_status(label("he_normal", 0.5, 1.0) + "/s1", "diverged", diverged_epoch=2, message="test")
        for seed in (0, 1):
            store.set_status(label("lecun_normal", 0.05, 2.0) + f"/s{seed}", "failed", message="test")
    return copy


def test_heatmap_draws_a_distinct_mark_for_diverged_and_for_unfinished(altered_sweep: Path) -> None:
    data = collect(altered_sweep, with_init=False)
    panels, _ = grids(data, SweepView("test_acc", "lr", "scale"))
    he, lecun = panels
    partly = he.cells[1][1]  # scale 1, lr 0.5
    assert (partly.state, partly.diverged, len(partly.values)) == ("some_diverged", 1, 1)
    with Store.in_dir(altered_sweep, readonly=True) as store:
        s0 = store.run(label("he_normal", 0.5, 1.0) + "/s0").test_metrics
    assert partly.mean == s0["test_acc"]  # the mean of the run that finished, the diverged one left out
    assert lecun.cells[2][0].state == "unfinished"  # scale 2, lr 0.05

    fig = heatmap_figure(panels, METRICS["test_acc"], title="t")
    try:
        texts = {ax_i: {t.get_position(): t.get_text() for t in ax.texts} for ax_i, ax in enumerate(fig.axes[:2])}
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
    finally:
        plt.close(fig)
    he_texts, lecun_texts = texts[0], texts[1]
    for i in range(len(SCALES)):
        assert he_texts[(2, i)] == "× diverged"
        assert lecun_texts[(2, i)] == "× diverged"
    assert he_texts[(1, 1)] == f"{s0['test_acc'] * 100:.1f}\n× 1/2"
    assert lecun_texts[(0, 2)] == "no run\nfinished"
    assert he_texts[(0, 0)] == f"{he.cells[0][0].mean * 100:.1f}"  # an ordinary cell: its value, no mark
    assert legend == ["× k/n: k of n runs diverged", "every run diverged", "no run finished"]


def test_lines_take_the_best_over_axes_not_drawn_and_log_x_for_a_decade(sweep_dir: Path) -> None:
    data = collect(sweep_dir, with_init=False)
    with Store.in_dir(sweep_dir, readonly=True) as store:
        rows = {r.arm: r for r in summarize(store)}
    panels, rest = lines(data, SweepView("test_acc", "lr", "scale"))
    assert ([p.title for p in panels], rest) == (["scale=0.5", "scale=1", "scale=2"], [])
    assert panels[1].lines["he_normal"][1].mean == rows[label("he_normal", 0.5, 1.0)].test_acc.mean
    # With no panel axis, a point is the best configuration over the scales.
    (flat,), rest = lines(data, SweepView("test_acc", "lr", None))
    assert rest == ["scale"]
    best = max((rows[label("lecun_normal", 0.05, s)] for s in SCALES), key=lambda r: r.test_acc.mean)
    assert flat.lines["lecun_normal"][0].label == best.arm
    fig = lines_figure(panels, METRICS["test_acc"], configuration_styles(data), title="t")
    scale_panels, _ = lines(data, SweepView("test_acc", "scale", "lr"))
    other = lines_figure(scale_panels, METRICS["test_acc"], configuration_styles(data), title="t")
    scales = fig.axes[0].get_xscale(), other.axes[0].get_xscale()
    plt.close(fig)
    plt.close(other)
    assert scales == ("log", "linear")  # lr spans 0.05 to 1000, scale only 0.5 to 2


def test_learning_curves_of_a_sweep_tell_every_configuration_apart(sweep_dir: Path) -> None:
    data = collect(sweep_dir, with_init=False)
    labels = [label(a, lr, s) for a in ARMS for lr in LRS for s in SCALES]
    assert sorted(data.arms) == sorted(labels)  # the configurations, not the arms' own labels with no runs
    styles = configuration_styles(data)
    looks = {(styles[x].color, styles[x].linestyle, styles[x].marker) for x in labels}
    assert len(looks) == len(labels)
    assert {styles[x].color for x in labels if x.startswith("he_normal@")} == {styles["he_normal"].color}


def test_best_learning_rate_against_width(width_dir: Path, tmp_path: Path) -> None:
    data = collect(width_dir, with_init=False)
    best = best_lr_by_width(data, "test_acc")
    with Store.in_dir(width_dir, readonly=True) as store:
        acc = {r.arm: r.test_acc.mean for r in summarize(store)}
    assert best is not None
    assert list(best) == list(ARMS)
    for arm in ARMS:
        expected = [(w, max((0.03, 0.3), key=lambda lr: acc[f"{arm}@lr={lr:g},width={w}"])) for w in (8, 32)]
        assert best[arm] == expected
    assert best_lr_by_width(collect(width_dir, with_init=False), "test_loss") is not None
    page = build_report(width_dir, tmp_path / "w", static=True).read_text(encoding="utf-8")
    assert "<h3>Best learning rate against width</h3>" in page
    assert (tmp_path / "w" / "best_lr_by_width.png").is_file()
    page = build_report(width_dir, tmp_path / "i").read_text(encoding="utf-8")
    assert "<h3>Best learning rate against width</h3>" in page
    chart = next(f for f in _charts(page) if f["id"] == "best-lr")
    lines = {s["key"]: dict(zip(s["x"], s["y"], strict=True)) for s in chart["panels"][0]["series"]}
    assert lines == {arm: {float(w): lr for w, lr in best[arm]} for arm in ARMS}


def _charts(page: str) -> list[dict]:
    """The figures embedded in an interactive page."""
    return json.loads(page.split('<script type="application/json" id="report-data">')[1].split("</script>")[0])[
        "figures"
    ]


# -- the page ------------------------------------------------------------------------------------------------------
def test_sweep_report_has_the_heatmap_lines_and_best_configurations(sweep_dir: Path, sweep_report: Path) -> None:
    folder = sweep_report.parent
    pngs = {p.name for p in folder.glob("*.png")}
    assert {"sweep_heatmap.png", "sweep_lines.png", "learning_curves.png"} <= pngs
    assert "best_lr_by_width.png" not in pngs  # no width axis
    page = sweep_report.read_text(encoding="utf-8")
    assert "<h3>Final test accuracy over lr and scale</h3>" in page
    assert 'alt="Heatmap of the final test accuracy over lr (columns) and scale (rows), one panel per arm' in page
    assert "<h3>Final test accuracy against lr</h3>" in page
    assert "<h2>Ranked configurations</h2>" in page
    assert "<dt>sweep</dt><dd>lr: 0.05, 0.5, 1000; scale: 0.5, 1, 2 (9 grid points)</dd>" in page
    assert "2 arms × 9 grid points × 2 seeds" in page
    with Store.in_dir(sweep_dir, readonly=True) as store:
        config, rows = store.study().config, summarize(store)
    winners = best_per_arm(config, rows)
    table = page.split('<table id="best-per-arm">')[1].split("</table>")[0]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S) for tr in re.findall(r"<tr>(.*?)</tr>", table, re.S)]
    cells = [c for c in cells if c]
    assert [c[0] for c in cells] == list(ARMS)
    for c in cells:
        win = winners[c[0]]
        lr, scale = re.fullmatch(r".*@lr=(.*),scale=(.*)", win.arm).groups()
        assert html.unescape(c[1]) == f"lr={lr}, scale={scale}"
        assert (int(c[2]), html.unescape(c[3])) == (win.rank, win.test_acc.text(100.0))
    md = (folder / "summary.md").read_text(encoding="utf-8")
    assert "## Best configuration per arm" in md
    assert "- 2 arms × 9 grid points (lr: 0.05, 0.5, 1000; scale: 0.5, 1, 2) × 2 seeds = 36 runs" in md
    assert "[Final test accuracy over lr and scale](sweep_heatmap.png)" in md


def test_static_sweep_report_renders_in_headless_chromium(sweep_report: Path, tmp_path: Path) -> None:
    count = len(list(sweep_report.parent.glob("*.png")))
    seen = assert_renders_cleanly(sweep_report.resolve().as_uri(), tmp_path / "sweep.png", images=count)
    alts = [img["alt"] for img in seen["images"]]
    assert any(a.startswith("Heatmap of the final test accuracy over lr (columns) and scale (rows)") for a in alts)
    heat = next(img for img in seen["images"] if img["alt"].startswith("Heatmap"))
    assert min(heat["natural"]) > 300  # a real figure, not a stub


def test_interactive_sweep_heatmap_has_every_cell_and_renders(sweep_dir: Path, interactive_sweep_report: Path) -> None:
    page = interactive_sweep_report.read_text(encoding="utf-8")
    assert "<h3>Final test accuracy over lr and scale</h3>" in page
    assert "<h3>Final test accuracy against lr</h3>" in page
    heat = next(f for f in _charts(page) if f["id"] == "sweep-heatmap")
    data = collect(sweep_dir, with_init=False)
    panels, _ = grids(data, SweepView("test_acc", "lr", "scale"))
    assert [p["title"] for p in heat["panels"]] == list(ARMS)
    for shown, grid in zip(heat["panels"], panels, strict=True):
        for row, cells in zip(shown["cells"], grid.cells, strict=True):
            for cell, want in zip(row, cells, strict=True):
                assert cell["s"] == want.state
                assert cell["l"] == want.label
                if want.values:
                    assert cell["v"] == pytest.approx(want.mean * 100.0, rel=1e-4)
                else:
                    assert cell["v"] is None
    with Page() as browser:
        browser.goto(interactive_sweep_report.resolve().as_uri())
        browser.wait_for("document.documentElement.dataset.ready === '1'", timeout=20)
        assert browser.errors() == []
        assert off_machine(browser.requests()) == []
        # Hovering the first panel's first cell names its configuration and value.
        x, y, label = browser.evaluate(
            """(() => { const c = initlabReport.figures['sweep-heatmap'].charts[0]; c.canvas.scrollIntoView();
                const r = c.canvas.getBoundingClientRect(), k = c.heat.cells[0];
                return [r.left + k.x + k.w / 2, r.top + k.y + k.h / 2, k.cell.l]; })()"""
        )
        browser.browser.send("Input.dispatchMouseEvent", browser.session, type="mouseMoved", x=x, y=y)
        tip = browser.wait_for(
            "(() => { const t = document.querySelector('#sweep-heatmap .tip');"
            " return t.hidden ? null : t.textContent; })()"
        )
        assert tip.startswith(label)
        assert browser.evaluate("initlabReport.png('sweep-heatmap', 0)").startswith("data:image/png;base64,")
        assert browser.evaluate("initlabReport.svg('sweep-heatmap', 0)").startswith("<svg")


# -- the command line ----------------------------------------------------------------------------------------------
def test_report_command_chooses_the_metric_and_the_axes(sweep_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "loss"
    args = ["report", str(sweep_dir), "--out", str(out), "--metric", "test_loss", "--x", "scale", "--y", "lr"]
    result = runner.invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h3>Final test loss over scale and lr</h3>" in page
    assert "<h3>Final test loss against scale</h3>" in page
    for bad, message in [
        (["--x", "sacle"], "Did you mean 'scale'?"),
        (["--y", "lrr"], "Did you mean 'lr'?"),
        (["--metric", "test_los"], "Did you mean 'test_loss'"),
        (["--x", "lr", "--y", "lr"], "two different axes"),
    ]:
        wrong = tmp_path / "wrong"
        result = runner.invoke(app, ["report", str(sweep_dir), "--out", str(wrong), *bad], env={"COLUMNS": "300"})
        assert result.exit_code == 2, result.output
        assert message in result.output
        assert not wrong.exists(), "a bad choice must stop before anything is written"


def test_choose_view_defaults_and_errors() -> None:
    assert choose_view({}) is None
    assert choose_view({"lr": [1]}) == SweepView("test_acc", "lr", None)
    assert choose_view({"depth": [1], "lr": [1], "width": [2]}, y="depth") == SweepView("test_acc", "lr", "depth")
    assert choose_view({"depth": [1], "lr": [1]}, x="lr") == SweepView("test_acc", "lr", "depth")
    with pytest.raises(ValueError, match="has no sweep"):
        choose_view({}, x="lr")
    with pytest.raises(ValueError, match="one axis"):
        choose_view({"lr": [1]}, y="lr")


# -- the export ----------------------------------------------------------------------------------------------------
def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("which", ["sweep", "widths"])
def test_export_has_a_column_per_axis_and_the_population(
    which: str, sweep_dir: Path, width_dir: Path, tmp_path: Path
) -> None:
    folder = sweep_dir if which == "sweep" else width_dir
    axes = ["lr", "scale"] if which == "sweep" else ["lr", "width"]
    result = CliRunner().invoke(app, ["export", str(folder), "--out", str(tmp_path / "csv")])
    assert result.exit_code == 0, result.output
    runs = _read(tmp_path / "csv" / "runs.csv")
    assert list(runs[0])[:6] == ["run_id", "arm", "seed", *axes, "population"]
    assert list(runs[0])[-1] == "scheme"
    for r in runs:
        # The label written by the study, "arm@lr=...,scale=.../sN", names the same values.
        named = dict(part.split("=") for part in r["arm"].split("@")[1].split(","))
        assert {a: float(r[a]) for a in axes} == {a: float(named[a]) for a in axes}
    epochs = _read(tmp_path / "csv" / "epochs.csv")
    layers = _read(tmp_path / "csv" / "layers.csv")
    by_run = {r["run_id"]: r for r in runs}
    for row in [*epochs, *layers]:
        assert {a: row[a] for a in [*axes, "population"]} == {
            a: by_run[row["run_id"]][a] for a in [*axes, "population"]
        }
    # The population index is the one the trainer stored with each epoch.
    assert all(int(e["population"]) == int(float(e["extra_population"])) for e in epochs)
    populations = {(r["width"] if which == "widths" else "", r["population"]) for r in runs}
    if which == "widths":  # one population per width; learning rates share one
        assert populations == {("8", "0"), ("32", "1")}
    else:
        assert populations == {("", "0")}

    result = CliRunner().invoke(app, ["export", str(folder), "--format", "json", "--out", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "s.json").read_text())
    assert {r["run_id"]: (r["population"], *(r[a] for a in axes)) for r in doc["runs"]} == {
        r["run_id"]: (int(r["population"]), *(float(r[a]) for a in axes)) for r in runs
    }


def test_export_refuses_a_run_column_that_would_hide_its_own(sweep_dir: Path, tmp_path: Path) -> None:
    with Store.in_dir(sweep_dir, readonly=True) as store:
        run_id = store.runs()[0].run_id
        for bad in ("seed", "status", "extra_lr", "test_acc"):
            with pytest.raises(ValueError, match="would hide a column"):
                store.export_csv(tmp_path / "x", run_columns={run_id: {bad: 1}})
        with pytest.raises(ValueError, match="would hide a column"):
            store.export_json(tmp_path / "x.json", run_columns={run_id: {"arm": "x"}})
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "x.json").exists()


def test_a_large_sweep_draws_histograms_for_an_even_spread_of_its_configurations() -> None:
    from initlab.report._build import MAX_HISTOGRAM_ROWS, _histogram_figure, _spread

    labels = [f"c{i}" for i in range(36)]
    shown = _spread(labels, MAX_HISTOGRAM_ROWS)
    assert len(shown) == MAX_HISTOGRAM_ROWS
    assert shown[0] == "c0"
    assert shown[-1] == "c35"
    assert shown == sorted(set(shown), key=labels.index)  # distinct, in the study's order
    assert _spread(labels[:5], MAX_HISTOGRAM_ROWS) == labels[:5]
    hist = {"edges": [0.0, 1.0, 2.0], "counts": [3, 1]}
    runs = {label: [(0, {"layers": [{"name": "1", "hist": hist}]})] for label in labels}
    figure = _histogram_figure(runs, ["1"], "mlp:8")
    assert "12 of the 36 configurations are shown" in figure.caption
