"""The study report: files, figures, the ranked table, escaping, and the page as headless Chromium renders it."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

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
    return build_report(study_dir)


# -- files and contents -------------------------------------------------------------------------------------------
def test_report_writes_a_self_contained_page_figures_and_a_summary(study_dir: Path, report: Path) -> None:
    assert report == study_dir / "report" / "report.html"
    folder = report.parent
    pngs = sorted(p.name for p in folder.glob("*.png"))
    assert pngs == ["initial_weights.png", "layer_norms.png", "learning_curves.png"]
    for name in pngs:
        assert (folder / name).read_bytes().startswith(PNG_MAGIC)
    assert not list(folder.glob(".*.tmp")), "a temporary file was left behind"
    page = report.read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3
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


def test_ranked_table_is_the_summary_in_its_order(study_dir: Path, report: Path) -> None:
    with Store.in_dir(study_dir, readonly=True) as store:
        rows = summarize(store)
    page = report.read_text(encoding="utf-8")
    table = page.split('<table id="ranked">')[1].split("</table>")[0]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S) for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
    cells = [c for c in cells if c]  # the header row has <th> only
    assert [html.unescape(c[1]) for c in cells] == [r.arm for r in rows]
    for c, r in zip(cells, rows, strict=True):
        assert html.unescape(c[2]) == r.test_acc.text(100.0)
        assert html.unescape(c[4]) == r.test_loss.text(digits=3)
        if r.test_acc.n >= 2:
            lo, hi = (r.test_acc.mean - r.test_acc.ci95) * 100, (r.test_acc.mean + r.test_acc.ci95) * 100
            assert html.unescape(c[3]) == f"[{lo:.2f}, {hi:.2f}]"
    huge = next(r for r in rows if r.arm == "huge")
    assert huge.diverged == 2, "the fixture's 'huge' arm should diverge in both seeds"
    assert next(c for c in cells if c[1] == "huge")[7] == "2/2"


def test_html_in_names_is_shown_as_text_never_as_markup(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert EVIL not in page
    escaped = html.escape(EVIL, quote=True)
    assert f"<h1>Study report: report {escaped}</h1>" in page
    assert f'<td class="l">{escaped}</td>' in page
    assert f"<title>initlab study report: report {escaped}</title>" in page
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
        store.record_diagnostics("he_normal/s0", 0, payload)
    page = build_report(copy, tmp_path / "out").read_text(encoding="utf-8")
    assert "Diagnostics recorded during the study" in page
    assert "layers[1.weight].act_std" in page
    assert "0.5" in page
    assert EVIL not in page


def test_out_may_name_a_folder_or_an_html_file(study_dir: Path, tmp_path: Path) -> None:
    path = build_report(study_dir, tmp_path / "elsewhere" / "my.html")
    assert path == tmp_path / "elsewhere" / "my.html"
    assert path.is_file()
    assert (path.parent / "learning_curves.png").is_file()


def test_report_of_a_missing_study_says_so(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no study database"):
        build_report(tmp_path)


# -- the command line ---------------------------------------------------------------------------------------------
def test_report_command_prints_the_path(study_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["report", str(study_dir), "--out", str(out)], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out / "report.html")
    assert (out / "report.html").is_file()
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")], env={"COLUMNS": "300"})
    assert missing.exit_code == 2
    assert "no study there" in missing.output


# -- in a real browser --------------------------------------------------------------------------------------------
class Chromium:
    """Headless Chromium driven through the DevTools protocol over ``--remote-debugging-pipe`` (fds 3 and 4).

    No WebDriver and no websocket: commands are JSON messages ended by a NUL byte. Console errors, uncaught
    exceptions, log errors and every network request of the page are recorded as they arrive.
    """

    FLAGS = (
        "--headless",
        "--no-sandbox",  # we run as root in a container
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-pipe",
        "--hide-scrollbars",
    )

    def __init__(self, binary: str, profile: Path) -> None:
        import fcntl

        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        # Chromium reads commands on fd 3 and writes replies on fd 4; move our ends above 10 so dup2 cannot clash.
        hi_cmd, hi_res = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10), fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)

        def child_fds() -> None:
            os.dup2(hi_cmd, 3)
            os.dup2(hi_res, 4)

        self.proc = subprocess.Popen(
            [binary, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,
            close_fds=False,  # our other fds are non-inheritable (PEP 446); fds 3 and 4 must survive
        )
        for fd in (cmd_r, res_w, hi_cmd, hi_res):
            os.close(fd)
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        with os.fdopen(self._res_r, "rb", buffering=0) as f:
            while chunk := f.read(1 << 16):
                buf += chunk
                *messages, buf = buf.split(b"\0")
                with self._cond:
                    for raw in messages:
                        msg = json.loads(raw)
                        if "id" in msg:
                            self._replies[msg["id"]] = msg
                        else:
                            self.events.append(msg)
                    self._cond.notify_all()

    def send(self, method: str, session: str | None = None, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        with self._cond:
            if not self._cond.wait_for(lambda: self._next_id in self._replies, timeout=timeout):
                raise TimeoutError(f"no reply from Chromium to {method} within {timeout} s")
            reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: any(e["method"] == method for e in self.events), timeout=timeout):
                raise TimeoutError(f"Chromium sent no {method} within {timeout} s")
            return next(e for e in self.events if e["method"] == method)

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close", timeout=5)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w)


def open_in_chromium(url: str, screenshot: Path) -> dict[str, Any]:
    """Load ``url`` in headless Chromium; return its console errors, network requests and images as rendered."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    with tempfile.TemporaryDirectory(prefix="initlab-chromium-") as profile:
        browser = Chromium(binary, Path(profile))
        try:
            target = browser.send("Target.createTarget", url="about:blank")["targetId"]
            session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable", session)
            browser.send(
                "Emulation.setDeviceMetricsOverride", session, width=1280, height=900, deviceScaleFactor=1, mobile=False
            )
            browser.events.clear()  # only what the page does counts
            browser.send("Page.navigate", session, url=url)
            browser.wait_event("Page.loadEventFired")
            time.sleep(0.3)  # let late console messages and requests arrive
            images = browser.send(
                "Runtime.evaluate",
                session,
                returnByValue=True,
                expression="""Array.from(document.images).map(i => {
                    i.scrollIntoView(); const r = i.getBoundingClientRect();
                    return {alt: i.alt, complete: i.complete, natural: [i.naturalWidth, i.naturalHeight],
                            shown: [r.width, r.height]}; })""",
            )["result"]["value"]
            shot = browser.send("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            events = list(browser.events)
        finally:
            browser.close()
    errors = [e["params"] for e in events if e["method"] == "Runtime.exceptionThrown"]
    errors += [
        e["params"]
        for e in events
        if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert")
    ]
    errors += [
        e["params"]["entry"]
        for e in events
        if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"
    ]
    requests = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    return {"errors": errors, "requests": requests, "images": images}


def _network(requests: list[str]) -> list[str]:
    """Requests that leave the machine (anything but the page's own file and inline data)."""
    return [u for u in requests if not u.startswith(("file:", "data:"))]


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    seen = open_in_chromium(report.resolve().as_uri(), shot)
    assert seen["errors"] == []
    assert _network(seen["requests"]) == []
    assert len(seen["images"]) == 3
    for img in seen["images"]:
        assert img["complete"], img
        assert min(img["natural"]) > 0, img
        assert min(img["shown"]) > 0, img
    assert shot.read_bytes().startswith(PNG_MAGIC)
    assert shot.stat().st_size > 10_000


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
    assert _network(seen["requests"]) == ["http://127.0.0.1:9/nothing.png"]
    assert all(min(img["natural"]) == 0 for img in seen["images"])
