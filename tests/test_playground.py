"""The playground: its setup parsing, the article presets, and the server and page end to end.

The end-to-end tests start ``initlab playground --no-browser --port 0`` as a subprocess (once for the module), drive
the page in headless Chromium (tests/_browser.py) and talk to the WebSocket directly where exact numbers are
compared. Everything polls with a timeout; nothing sleeps a fixed time to wait for the server.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from initlab.playground.setup import MAX_UPDATE_MACS, PRESETS, Setup, parse_setup

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
websockets_sync = pytest.importorskip("websockets.sync.client")

from _browser import Page  # noqa: E402  (after the skips: it needs nothing, but reads best here)

URL_PATTERN = re.compile(r"http://127\.0\.0\.1:(\d+)/")


# ---------------------------------------------------------------------------------------------------- the setup
def test_the_canonical_query_reads_back_equal() -> None:
    query = "data=moons&n=300&noise=0.2&widths=8,8,4&act=tanh&opt=momentum&lr=0.003&batch=32"
    setup, errors = parse_setup(query + "&arm=zeros&arm=random_normal;std=0.5;scale=2&arm=article:large&seed=7")
    assert errors == []
    assert setup.widths == (8, 8, 4)
    assert setup.opt == "momentum"
    assert setup.batch == 32
    assert [str(a) for a in setup.arms] == ["zeros", "random_normal;std=0.5;scale=2", "article:large"]
    again, errors = parse_setup(setup.to_query())
    assert errors == []
    assert again == setup


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("lr=-1", "lr=-1: the learning rate must be in [1e-06, 10]"),
        ("depth=10000", "depth=10000: the number of hidden layers must be in [1, 50]"),
        ("widths=10,0", "every hidden width must be in [1, 512]"),
        ("arm=he_nromal", "Did you mean 'he_normal'"),
        ("data=circels", "Did you mean 'circles'"),
        ("lr=abc", "lr='abc': the learning rate must be a number"),
        ("arm=zeros;std=1", "std applies to random_normal and truncated_normal only"),
        ("learning_rate=0.1", "unknown setting 'learning_rate'"),
    ],
)
def test_a_bad_value_is_named_and_the_rest_is_kept(query: str, says: str) -> None:
    base = Setup(lr=0.05)
    setup, errors = parse_setup(query + "&seed=11", base)
    assert len(errors) == 1, errors
    assert says in errors[0], errors
    assert setup.seed == 11  # the good value is applied
    assert setup.lr == 0.05  # the bad one keeps the previous value


def test_the_work_of_one_update_is_bounded() -> None:
    setup, errors = parse_setup("depth=50&width=512&n=2000")
    assert setup == Setup()
    assert "multiply-adds per update" in errors[0]
    ok, errors = parse_setup("depth=20&width=64&n=300")
    assert errors == []
    assert ok.update_macs() < MAX_UPDATE_MACS
    setup, errors = parse_setup("n=100&split=0.5&batch=80&seed=11", Setup(lr=0.05))
    assert setup == Setup(lr=0.05)
    assert "batch=80 is larger than the training set (50 samples)" in errors[0]
    _, errors = parse_setup("arm=zeros&" * 5)
    assert "at most 4" in errors[0]
    _, errors = parse_setup("x" * 5000)
    assert "at most 4096" in errors[0]


def test_presets_draw_the_assignments_weights() -> None:
    import torch

    from initlab import models
    from initlab.playground.presets import apply_preset, dlai_data
    from initlab.reproduce import dlai_circles

    state = np.random.get_state()
    try:
        expected = {kind: dlai_circles._init(kind) for kind in ("zeros", "random", "he")}
    finally:
        np.random.set_state(state)
    for preset, kind in (("zero", "zeros"), ("large", "random"), ("appropriate", "he")):
        net = models.build("mlp:10,5", input_shape=(2,), num_classes=1).double()
        apply_preset(net, preset, seed=3, act="relu")
        linear = [m for m in net if isinstance(m, torch.nn.Linear)]
        for layer, module in enumerate(linear, 1):
            assert np.array_equal(module.weight.detach().numpy(), expected[kind][f"W{layer}"]), (preset, layer)
            assert not module.bias.detach().any()
    before = np.random.get_state()[1].copy()
    x, y, _, _ = dlai_data()
    assert np.array_equal(np.random.get_state()[1], before)  # the caller's global NumPy state is left alone
    try:
        ref_x, ref_y, _, _ = dlai_circles._data()
    finally:
        np.random.set_state(state)
    assert np.array_equal(x.numpy(), ref_x.T)
    assert np.array_equal(y.numpy(), ref_y[0])
    assert PRESETS == ("article:zero", "article:small", "article:appropriate", "article:large")


def test_import_initlab_stays_light() -> None:
    code = "import initlab, initlab.cli, sys; print(sorted(m for m in ('starlette', 'uvicorn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_copy_as_python_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from initlab.playground.export import as_command, as_python

    setup, _ = parse_setup("data=circles&n=60&arm=zeros&arm=he_normal&arm=article:small&batch=16&seed=1")
    code = as_python(setup, steps=3)
    exec(compile(code, "<playground>", "exec"), {})  # the code the page hands out must run
    out = capsys.readouterr().out
    assert "zeros: train cost" in out
    assert "Symmetric units" in out
    command = as_command(setup)
    assert "initlab compare --dataset circles --model mlp:10,5 --inits zeros,he_normal,random_normal" in command
    assert "initlab diagnose" in command


# ---------------------------------------------------------------------------------------------------- the server
@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``initlab playground --no-browser --port 0`` in a subprocess; yields the URL it prints."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "initlab", "playground", "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    lines: list[str] = []
    deadline = time.monotonic() + 90
    url = None
    assert proc.stdout is not None
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = URL_PATTERN.search(line)
        if match:
            url = match.group(0)
    if url is None:
        proc.kill()
        pytest.fail("the playground printed no URL:\n" + "".join(lines))
    assert int(URL_PATTERN.search(url).group(1)) > 0  # the port actually chosen, not 0
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Socket:
    """A WebSocket client of the playground: send messages, read them until one matches."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "ws"

    def __enter__(self) -> Socket:
        self._connection = websockets_sync.connect(self.url, max_size=None)
        self.ws = self._connection.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._connection.__exit__(None, None, None)

    def send(self, message: dict[str, Any] | str | bytes) -> None:
        self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    def until(self, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if msg["type"] == "frame":
                self.send({"type": "ack"})
            if msg["type"] == kind:
                return msg


def test_the_page_trains_zeros_against_he_on_circles(server: str, tmp_path: Path) -> None:
    with Page() as page:
        page.goto(server)
        page.wait_for("window.playgroundStatus.frames > 0")
        # Choose the arms in the form, as a person would: zeros against He on circles, 20 steps per update.
        page.evaluate("""(() => {
            const set = (el, v) => { el.value = v; el.dispatchEvent(new Event('change')); };
            const rows = document.querySelectorAll('.arm-row');
            rows[3].querySelector('button').click(); rows[2].querySelector('button').click();
            const [a, b] = document.querySelectorAll('.arm-name');
            a.value = 'zeros'; b.value = 'he_normal';
            document.getElementById('data').value = 'circles';
            document.getElementById('speed').value = '20';
            set(b, 'he_normal');
        })()""")
        page.wait_for("window.playgroundStatus.arms.map(a => a.label).join() === 'zeros,he_normal'")
        assert "arm=zeros&arm=he_normal" in page.evaluate("location.search")
        page.evaluate("document.getElementById('play').click()")
        page.wait_for("window.playgroundStatus.step > 0 && window.playgroundStatus.arms[1].boundaryRange > 0.3")
        he_canvas = "document.querySelector('.arm[data-arm=\"1\"] canvas.boundary').toDataURL()"
        first = page.evaluate(he_canvas)
        step = page.evaluate("window.playgroundStatus.step")
        page.wait_for(f"window.playgroundStatus.step > {step}")
        assert page.evaluate(he_canvas) != first  # the boundary moves between frames
        page.wait_for("window.playgroundStatus.arms[1].testAcc > 0.9 && window.playgroundStatus.step >= 300", 40)
        page.wait_for("(window.playgroundStatus.arms[0].findings || []).includes('symmetry')")
        zeros, he = page.evaluate("window.playgroundStatus.arms")
        assert 0.4 <= zeros["trainAcc"] <= 0.6, zeros
        assert 0.4 <= zeros["testAcc"] <= 0.6, zeros
        assert zeros["boundaryRange"] < 0.02, zeros  # flat: the same prediction everywhere
        assert he["testAcc"] > 0.9, he
        assert he["boundaryRange"] > 0.9, he
        shown = page.evaluate("document.querySelector('.arm[data-arm=\"0\"] .findings').textContent")
        assert "Symmetric units" in shown
        page.evaluate("document.getElementById('play').click()")
        shot = page.screenshot(tmp_path / "playground.png")
        print(f"screenshot: {shot}")
        assert shot.stat().st_size > 50_000
        assert page.errors() == []
        assert [u for u in page.requests() if not u.startswith((server, "data:"))] == []
        sockets = [e["params"]["url"] for e in page.browser.events if e["method"] == "Network.webSocketCreated"]
        assert sockets
        assert all(u.startswith(server.replace("http://", "ws://")) for u in sockets)


def test_the_article_presets_reproduce_the_assignment(server: str) -> None:
    from initlab.reproduce.dlai_circles import PUBLISHED_COSTS, PUBLISHED_RANDOM_1000, REL_TOL

    query = ("data=dlai-circles&widths=10,5&act=relu&opt=sgd&lr=0.01&batch=0&arm=article:zero&arm=article:large"
             "&arm=article:appropriate&seed=3")  # fmt: skip
    with Socket(server) as ws:
        ws.send({"type": "setup", "query": query})
        assert ws.until("setup")["errors"] == []
        frame = ws.until("frame")
        while frame["step"] < 1000:
            ws.send({"type": "step", "steps": min(200, 1000 - frame["step"])})
            frame = ws.until("frame")
    assert frame["step"] == 1000
    zero, large, he = (arm["train_cost"] for arm in frame["arms"])
    # The reproduction matches the published costs to REL_TOL; the page matches them to 1e-9.
    assert math.isclose(zero, PUBLISHED_COSTS["zeros"][1], rel_tol=1e-9), zero
    assert math.isclose(he, PUBLISHED_COSTS["he"][1], rel_tol=1e-9), he
    low, high = PUBLISHED_RANDOM_1000
    assert low <= large <= high, large
    assert REL_TOL < 1e-9


def test_bad_input_is_shown_and_other_pages_keep_training(server: str, tmp_path: Path) -> None:
    with Page() as busy, Socket(server) as ws:
        busy.goto(server + "?data=moons&arm=he_normal&speed=2")
        busy.wait_for("window.playgroundStatus.frames > 0")
        busy.evaluate("document.getElementById('play').click()")
        busy.wait_for("window.playgroundStatus.step > 0")
        with Page() as bad:
            bad.goto(server + "?lr=-1&depth=10000&arm=he_nromal&arm=zeros")
            bad.wait_for("window.playgroundStatus.frames > 0")
            shown = bad.evaluate("(e => e.hidden ? '' : e.textContent)(document.getElementById('errors'))")
            assert "the learning rate must be in [1e-06, 10]" in shown
            assert "the number of hidden layers must be in [1, 50]" in shown
            assert "Did you mean 'he_normal'" in shown
            assert bad.evaluate("window.playgroundStatus.arms.map(a => a.label).join()") == "zeros"
            assert bad.errors() == []
            bad.screenshot(tmp_path / "bad-input.png")
        # Malformed messages on the socket: each answered in words, and the socket stays open.
        for message, says in [
            ("{not json", "not JSON"),
            ("[1, 2]", "must be a JSON object with a 'type'"),
            (json.dumps({"type": "launch"}), "unknown message type 'launch'"),
            (b"\x00\x01", "binary message"),
            (json.dumps({"type": "setup", "query": 5}), "'query' must be a string"),
            (json.dumps({"type": "step", "steps": 10**9}), "'steps' must be a whole number"),
        ]:
            ws.send(message)
            reply = ws.until("error")
            assert says in " ".join(reply["messages"]), (message, reply)
        ws.send({"type": "setup", "query": "arm=dirac"})
        assert "cannot be built" in " ".join(ws.until("error")["messages"])
        step = busy.evaluate("window.playgroundStatus.step")
        busy.wait_for(f"window.playgroundStatus.step > {step}")  # the other page never stopped
        assert busy.errors() == []
        with urllib.request.urlopen(server, timeout=10) as response:
            assert response.status == 200
