"""Headless Chromium for tests: open a page, and see its console errors, network requests and images as rendered.

Shared by the report tests (the study report and the diagnosis report).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest


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


def off_machine(requests: list[str]) -> list[str]:
    """Requests that leave the machine (anything but the page's own file and inline data)."""
    return [u for u in requests if not u.startswith(("file:", "data:"))]


def assert_renders_cleanly(url: str, screenshot: Path, images: int) -> dict[str, Any]:
    """Open ``url`` in headless Chromium and assert what every report page must satisfy: no console or page errors, no
    request off this machine, ``images`` images all loaded and shown with a non-zero size, and a real screenshot."""
    seen = open_in_chromium(url, screenshot)
    assert seen["errors"] == []
    assert off_machine(seen["requests"]) == []
    assert len(seen["images"]) == images
    for img in seen["images"]:
        assert img["complete"], img
        assert min(img["natural"]) > 0, img
        assert min(img["shown"]) > 0, img
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert screenshot.stat().st_size > 10_000
    return seen


class Page:
    """One page in headless Chromium that a test drives: navigate, evaluate JavaScript, poll, take screenshots,
    and read the console errors and network requests recorded so far. Use as a context manager."""

    def __init__(self, width: int = 1400, height: int = 1000) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
        self._profile = tempfile.TemporaryDirectory(prefix="initlab-chromium-")
        self.browser = Chromium(binary, Path(self._profile.name))
        target = self.browser.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.browser.send(f"{domain}.enable", self.session)
        self.browser.send("Emulation.setDeviceMetricsOverride", self.session, width=width, height=height,
                          deviceScaleFactor=1, mobile=False)  # fmt: skip
        self.browser.events.clear()

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.browser.close()
        self._profile.cleanup()

    def goto(self, url: str, timeout: float = 30.0) -> None:
        with self.browser._cond:
            self.browser.events[:] = [e for e in self.browser.events if e["method"] != "Page.loadEventFired"]
        self.browser.send("Page.navigate", self.session, url=url)
        self.browser.wait_event("Page.loadEventFired", timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """The value of a JavaScript expression (promises awaited); a thrown exception raises RuntimeError."""
        reply = self.browser.send("Runtime.evaluate", self.session, timeout=timeout, expression=expression,
                                  returnByValue=True, awaitPromise=True)  # fmt: skip
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression[:80]!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, interval: float = 0.05) -> Any:
        """Poll ``expression`` until it is truthy; return its value (TimeoutError with the last value otherwise)."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"{expression!r} stayed falsy for {timeout} s (last value {value!r})")

    def screenshot(self, path: Path) -> Path:
        shot = self.browser.send("Page.captureScreenshot", self.session, format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def errors(self) -> list[dict[str, Any]]:
        """Uncaught exceptions, console errors and log errors so far."""
        events = list(self.browser.events)
        out = [e["params"] for e in events if e["method"] == "Runtime.exceptionThrown"]
        console = [e["params"] for e in events if e["method"] == "Runtime.consoleAPICalled"]
        out += [c for c in console if c["type"] in ("error", "assert")]
        log = [e["params"]["entry"] for e in events if e["method"] == "Log.entryAdded"]
        out += [entry for entry in log if entry["level"] == "error"]
        return out

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in list(self.browser.events)
                if e["method"] == "Network.requestWillBeSent"]  # fmt: skip
