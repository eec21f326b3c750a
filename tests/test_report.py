"""The study report: files, figures, the ranked table, escaping, and the page as headless Chromium renders it."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from _browser import assert_renders_cleanly, off_machine, open_in_chromium
from initlab.cli import app
from initlab.report import build_report, collect
from initlab.report._figures import arm_styles
from initlab.store import Store
from initlab.studies import Arm, Study, run_study, summarize
from initlab.training import TrainSettings

EVIL = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="session")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny digits study (a few seconds): a run that diverges, an all-zeros arm, LSUV, and an arm named in HTML."""
    study = Study(
        name=f"report {EVIL}",
        dataset="digits",
        model="mlp:32,16",
        arms=(
            Arm("he_normal", "he_normal"),
            Arm("zeros", "zeros"),
            Arm(EVIL, "glorot_uniform"),
            Arm("lsuv", "lsuv"),
            Arm("huge", {"class_name": "RandomNormal", "config": {"stddev": 100.0}}),
        ),
        seeds=(0, 1),
        train=TrainSettings(optimizer="sgd", lr=0.2, epochs=2, batch_size=64),
    )
    return run_study(study, tmp_path_factory.mktemp("study") / "s", workers=1)


@pytest.fixture(scope="session")
def report(study_dir: Path) -> Path:
    """The interactive report (the default), in a folder of its own."""
    return build_report(study_dir, study_dir / "interactive")


@pytest.fixture(scope="session")
def static_report(study_dir: Path) -> Path:
    """The static report (--static: matplotlib PNGs, no script), in the default place."""
    return build_report(study_dir, static=True)


# -- files and contents -------------------------------------------------------------------------------------------
def test_static_report_writes_a_self_contained_page_figures_and_a_summary(study_dir: Path, static_report: Path) -> None:
    report = static_report
    assert report == study_dir / "report" / "report.html"
    folder = report.parent
    pngs = sorted(p.name for p in folder.glob("*.png"))
    # Diagnostics figures come only when the store has diagnoses (the runner may store them at epoch 0).
    assert [n for n in pngs if not n.startswith("diagnostics_")] == [
        "initial_weights.png",
        "layer_norms.png",
        "learning_curves.png",
    ]
    for name in pngs:
        assert (folder / name).read_bytes().startswith(PNG_MAGIC)
    assert not list(folder.glob(".*.tmp")), "a temporary file was left behind"
    page = report.read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(pngs)
    assert {base64.b64decode(i) for i in images} == {(folder / n).read_bytes() for n in pngs}
    # Nothing that could fetch or run: no script, no external URL in any src/href, no @import or url() in styles.
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert "@import" not in page
    assert "url(" not in page
    # What ran: versions and machine from the study record.
    with Store.in_dir(study_dir, readonly=True) as store:
        meta = store.study().meta
    assert f"torch {meta['torch']}" in page
    assert f"initlab {meta['initlab']}" in page
    assert html.escape(str(meta["cpu"])) in page
    assert "mlp:32,16" in page
    md = (folder / "summary.md").read_text(encoding="utf-8")
    assert md.startswith("# Study report: ")
    assert "learning_curves.png" in md


@pytest.mark.parametrize("which", ["interactive", "static"])
def test_ranked_table_is_the_summary_in_its_order(
    study_dir: Path, report: Path, static_report: Path, which: str
) -> None:
    with Store.in_dir(study_dir, readonly=True) as store:
        rows = summarize(store)
    page = (report if which == "interactive" else static_report).read_text(encoding="utf-8")
    table = page.split('<table id="ranked">')[1].split("</table>")[0]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S) for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    cells = [c for c in cells if c]  # the header row has <th> only
    assert [html.unescape(c[1]) for c in cells] == [r.arm for r in rows]
    for c, r in zip(cells, rows, strict=True):
        assert html.unescape(c[2]) == r.test_acc.text(100.0)
        assert html.unescape(c[4]) == r.test_loss.text(digits=3)
        if r.test_acc.n >= 2:
            lo, hi = (r.test_acc.mean - r.test_acc.ci95) * 100, (r.test_acc.mean + r.test_acc.ci95) * 100
            clipped = lo < 0 or hi > 100
            lo, hi = max(lo, 0.0), min(hi, 100.0)
            assert html.unescape(c[3]) == f"[{lo:.2f}, {hi:.2f}]" + ("*" if clipped else "")
            assert 0.0 <= lo <= hi <= 100.0
    huge = next(r for r in rows if r.arm == "huge")
    assert huge.diverged == 2, "the fixture's 'huge' arm should diverge in both seeds"
    assert next(c for c in cells if c[1] == "huge")[7] == "2/2"


def test_accuracy_interval_is_clipped_to_the_possible_range() -> None:
    from initlab.report._build import _ACCURACY_RANGE, _ci
    from initlab.studies import Stat

    # Two seeds at 97% and 99%: t(1) = 12.7 gives 98 ± 12.7 %, reaching 110.7 %.
    stat = Stat(mean=0.98, std=0.01414, ci95=0.127, n=2)
    assert _ci(stat, 100.0) == "[85.30, 110.70]"
    assert _ci(stat, 100.0, clip=_ACCURACY_RANGE) == "[85.30, 100.00]*"
    assert _ci(Stat(mean=0.5, std=0.01, ci95=0.02, n=2), 100.0, clip=_ACCURACY_RANGE) == "[48.00, 52.00]"
    assert _ci(Stat(mean=0.5, std=math.nan, ci95=math.nan, n=1), 100.0, clip=_ACCURACY_RANGE) == "-"


def test_html_in_names_is_shown_as_text_never_as_markup(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert EVIL not in page
    escaped = html.escape(EVIL, quote=True)
    assert f"<h1>Study report: report {escaped}</h1>" in page
    assert f'<td class="l">{escaped}</td>' in page
    assert f"<title>initlab study report: report {escaped}</title>" in page
    # In the charts' data the name is JSON with < and > escaped, so it cannot end the script element.
    data = page.split('<script type="application/json" id="report-data">')[1].split("</script>")[0]
    assert "<" not in data
    assert EVIL in json.dumps(json.loads(data), ensure_ascii=False)
    md = (report.parent / "summary.md").read_text(encoding="utf-8")
    assert EVIL not in md
    assert "&lt;script>" in md


def test_initial_weights_are_rebuilt_with_each_arms_scheme_and_first_seed(study_dir: Path) -> None:
    data = collect(study_dir)
    by_arm = {a.arm: a for a in data.init}
    assert set(by_arm) == set(data.arms)
    assert all(a.error is None and a.seed == 0 for a in data.init), [a.error for a in data.init]
    assert [layer.name for layer in by_arm["zeros"].layers] == ["1.weight", "3.weight", "5.weight"]
    assert all(not layer.values.any() for layer in by_arm["zeros"].layers)
    first = by_arm["he_normal"].layers[0]
    assert first.shape == (32, 64)
    # He normal: std sqrt(2 / fan_in) with fan_in 64; 2048 samples give a standard error of about 1.6%.
    assert np.std(first.values) == pytest.approx(np.sqrt(2 / 64), rel=0.08)
    # The norm drawn at epoch 0 is the norm of these weights; the stored epoch-1 norm is after training.
    assert first.norm == pytest.approx(float(np.linalg.norm(first.values)))
    # LSUV saw data (the runner's 256 training samples) and is reproducible: the same weights twice.
    again = {a.arm: a for a in collect(study_dir).init}
    assert np.array_equal(again["lsuv"].layers[0].values, by_arm["lsuv"].layers[0].values)


def test_twelve_arms_get_distinct_looks_that_survive_greyscale() -> None:
    styles = arm_styles([f"arm{i}" for i in range(12)])
    assert len({s.color for s in styles.values()}) == 12
    # In greyscale the colour is lost: line style and marker together must still tell every arm apart.
    assert len({(s.linestyle, s.marker) for s in styles.values()}) == 12


def test_diagnostics_in_the_store_are_rendered(study_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "study"
    shutil.copytree(study_dir, copy, ignore=shutil.ignore_patterns("report", "checkpoints"))
    payload = {"layers": [{"name": "1.weight", "act_std": 0.5, "grad_std": 0.01}], "note": EVIL}
    with Store.in_dir(copy) as store:
        # Epoch 7, past the study's 2 epochs: the runner stores its own diagnoses at the epochs it ran.
        store.record_diagnostics("he_normal/s0", 7, payload)
    page = build_report(copy, tmp_path / "out").read_text(encoding="utf-8")
    assert "Diagnostics recorded during the study" in page
    assert "layers[1.weight].act_std" in page
    assert "0.5" in page
    assert EVIL not in page


def test_out_may_name_a_folder_or_an_html_file(study_dir: Path, tmp_path: Path) -> None:
    path = build_report(study_dir, tmp_path / "elsewhere" / "my.html")
    assert path == tmp_path / "elsewhere" / "my.html"
    assert path.is_file()
    assert (path.parent / "summary.md").is_file()
    assert not list(path.parent.glob("*.png")), "the interactive report writes no figure files"
    path = build_report(study_dir, tmp_path / "static" / "my.html", static=True)
    assert (path.parent / "learning_curves.png").is_file()


def test_report_of_a_missing_study_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no study database"):
        build_report(tmp_path)


# -- diagnoses stored by the study ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def diagnosed_study(study_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The study with a diagnosis of every run at initialization, and of the first seeds after a few SGD steps."""
    import torch

    import initlab
    from initlab import data as datasets
    from initlab import models
    from initlab.diagnostics import diagnose

    copy = tmp_path_factory.mktemp("diagnosed") / "s"
    shutil.copytree(study_dir, copy, ignore=shutil.ignore_patterns("report", "checkpoints"))
    ds = datasets.load("digits", split="train")
    x, y = ds.x[:128], ds.y[:128]
    with Store.in_dir(copy) as store:
        config = store.study().config
        schemes = {a["label"]: a["scheme"] for a in config["arms"]}
        stored = {(run_id, epoch) for run_id, epoch, _ in store.diagnostics()}
        for run in store.runs():
            model = models.build(config["model"], input_shape=ds.input_shape, num_classes=ds.num_classes)
            initlab.initialize(model, schemes[run.arm], seed=run.seed, data=x)
            if (run.run_id, 0) not in stored:
                store.record_diagnostics(run.run_id, 0, diagnose(model, x, targets=y, label=run.arm).to_dict())
            if run.seed == 0 and (run.run_id, 2) not in stored:
                opt = torch.optim.SGD(model.parameters(), lr=0.05)
                for _ in range(20):
                    opt.zero_grad()
                    torch.nn.functional.cross_entropy(model(x), y).backward()
                    opt.step()
                store.record_diagnostics(run.run_id, 2, diagnose(model, x, targets=y, label=run.arm).to_dict())
    return copy


def test_stored_diagnoses_are_drawn_per_arm(diagnosed_study: Path, tmp_path: Path) -> None:
    from initlab.report._build import _first_seed_diagnoses

    data = collect(diagnosed_study, with_init=False)
    runs = _first_seed_diagnoses(data)
    assert list(runs) == data.arms
    with Store.in_dir(diagnosed_study, readonly=True) as store:
        for arm, points in runs.items():
            first = min((r for r in store.runs() if r.arm == arm), key=lambda r: r.seed)
            # The first seed's own diagnoses, in epoch order, not another run's.
            assert points == [(epoch, payload) for _, epoch, payload in store.diagnostics(first.run_id)]
            assert points[0][0] == 0
            assert 2 in [epoch for epoch, _ in points]
    interactive = build_report(diagnosed_study, tmp_path / "interactive").read_text(encoding="utf-8")
    data = json.loads(interactive.split('id="report-data">')[1].split("</script>")[0])
    diagnosed = next(f for f in data["figures"] if f["id"] == "diagnoses")
    assert diagnosed["frames"]["values"] == [0, 2]  # one slider position per stored epoch
    assert [e["key"] for e in diagnosed["legend"]] == data_arms(diagnosed_study)
    # The std by layer at epoch 0 is the stored diagnosis' own, for every arm's first seed.
    std = {s["key"]: s["y"] for s in diagnosed["frames"]["panels"][0][0]["series"]}
    for arm, points in runs.items():
        stored = [layer["std"] for layer in points[0][1]["layers"]]
        assert std[arm] == pytest.approx([v if v is None else float(f"{v:.5g}") for v in stored])
    path = build_report(diagnosed_study, tmp_path / "out", static=True)
    names = {p.name for p in path.parent.glob("*.png")}
    assert {"diagnostics_depth.png", "diagnostics_histograms.png", "diagnostics_over_training.png"} <= names
    page = path.read_text(encoding="utf-8")
    assert "Activation and gradient std by layer at initialization" in page
    assert "Diagnostics recorded during the study" not in page, "diagnoses are figures, not the generic table"
    assert EVIL not in page
    assert_renders_cleanly(path.resolve().as_uri(), tmp_path / "diagnosed.png", images=len(names))


def data_arms(folder: Path) -> list[str]:
    return collect(folder, with_init=False).arms


# -- the command line ---------------------------------------------------------------------------------------------
def test_report_command_prints_the_path(study_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["report", str(study_dir), "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out / "report.html")
    assert "<script>" in (out / "report.html").read_text(encoding="utf-8")
    assert not list(out.glob("*.png"))
    static = tmp_path / "s"
    result = CliRunner().invoke(app, ["report", str(study_dir), "--out", str(static), "--static"])
    assert result.exit_code == 0, result.output
    assert "<script" not in (static / "report.html").read_text(encoding="utf-8")
    assert (static / "learning_curves.png").is_file()
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")], env={"COLUMNS": "300"})
    assert missing.exit_code == 2
    assert "no study there" in missing.output


# -- in a real browser --------------------------------------------------------------------------------------------
def test_static_report_renders_in_headless_chromium(static_report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    count = len(list(static_report.parent.glob("*.png")))
    assert_renders_cleanly(static_report.resolve().as_uri(), shot, images=count)


def test_interactive_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    # No image: every figure is a chart drawn by the page's script, without error or request.
    assert_renders_cleanly(report.resolve().as_uri(), tmp_path / "interactive.png", images=0)


def test_the_browser_check_catches_errors_requests_and_broken_images(tmp_path: Path) -> None:
    # The check above must be able to fail: a page that fetches from the network, logs an error and has a broken
    # image is caught on all three counts.
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>bad</title></head><body>'
        '<img src="http://127.0.0.1:9/nothing.png" alt="remote"><img src="data:image/png;base64,AAAA" alt="broken">'
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    seen = open_in_chromium(page.as_uri(), tmp_path / "bad.png")
    assert any("boom" in json.dumps(e) for e in seen["errors"])
    assert off_machine(seen["requests"]) == ["http://127.0.0.1:9/nothing.png"]
    assert all(min(img["natural"]) == 0 for img in seen["images"])
